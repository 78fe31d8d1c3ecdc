"""The four buckets: recordings, transcripts, models, feedback.

Every bucket gets the same baseline, so a policy check can treat them alike:

1. all four public-access blocks on, and ACLs disabled (bucket-owner-enforced ownership);
2. versioning on (an overwrite or delete can be undone; the batch function pins the version it read);
3. SSE-KMS with the platform key and an S3 bucket key (one KMS call per object batch, not per object);
4. a bucket policy that denies every request not made over TLS;
5. lifecycle: old versions expire after ``noncurrentVersionDays``, abandoned multipart uploads after
   7 days, and per-bucket rules (raw recordings expire after ``recordingRetentionDays``: the transcript
   is the product, the audio is personal data we should not keep longer than needed).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from infra import access, iam
from infra.components.context import AwsContext

#: Days before an abandoned multipart upload is cleaned up.
ABANDONED_UPLOAD_DAYS = 7


@dataclass(frozen=True)
class ExpiryRule:
    """Expire current objects under ``prefix`` after ``days``."""

    rule_id: str
    prefix: str
    days: int


@dataclass(frozen=True)
class BucketSpec:
    field_name: str  # the ResourceNames field, e.g. "recordings_bucket"
    purpose: str
    expiry: Sequence[ExpiryRule] = field(default_factory=tuple)


def lifecycle_rules(spec: BucketSpec, noncurrent_days: int) -> list[dict[str, Any]]:
    """Lifecycle rules in provider input form (pure, for the tests)."""
    rules: list[dict[str, Any]] = [
        {
            "id": "expire-noncurrent-versions",
            "status": "Enabled",
            "filter": {"prefix": ""},
            "noncurrent_version_expiration": {"noncurrent_days": noncurrent_days},
            "abort_incomplete_multipart_upload": {"days_after_initiation": ABANDONED_UPLOAD_DAYS},
        },
        {
            # Once every version of a key has expired, drop the delete marker left behind.
            "id": "remove-expired-delete-markers",
            "status": "Enabled",
            "filter": {"prefix": ""},
            "expiration": {"expired_object_delete_marker": True},
        },
    ]
    for rule in spec.expiry:
        rules.append(
            {
                "id": rule.rule_id,
                "status": "Enabled",
                "filter": {"prefix": rule.prefix},
                "expiration": {"days": rule.days},
            }
        )
    return rules


def bucket_specs(
    recording_retention_days: int, transcript_retention_days: int | None
) -> tuple[BucketSpec, ...]:
    transcript_expiry = (
        (ExpiryRule("expire-transcripts", access.TRANSCRIPTS, transcript_retention_days),)
        if transcript_retention_days
        else ()
    )
    return (
        BucketSpec(
            "recordings_bucket",
            "uploaded audio awaiting or after transcription",
            (ExpiryRule("expire-raw-recordings", access.RECORDINGS, recording_retention_days),),
        ),
        BucketSpec(
            "transcripts_bucket", "transcripts, error records, shadow results", transcript_expiry
        ),
        BucketSpec("models_bucket", "signed model versions, channels, Triton repositories"),
        BucketSpec("feedback_bucket", "user corrections and their audio (training data)"),
    )


class SecureBucket(pulumi.ComponentResource):
    """One private, versioned, KMS-encrypted, TLS-only bucket with lifecycle rules."""

    bucket: aws.s3.Bucket
    name: pulumi.Output[str]
    arn: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        *,
        bucket_name: str,
        spec: BucketSpec,
        key_arn: pulumi.Input[str],
        noncurrent_days: int,
        protect: bool,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("edgescribe:storage:SecureBucket", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.bucket = aws.s3.Bucket(
            name,
            bucket=bucket_name,
            force_destroy=False,
            tags={"edgescribe:purpose": spec.purpose},
            opts=pulumi.ResourceOptions(parent=self, protect=protect),
        )
        ownership = aws.s3.BucketOwnershipControls(
            f"{name}-ownership",
            bucket=self.bucket.id,
            rule={"object_ownership": "BucketOwnerEnforced"},
            opts=child,
        )
        public_access = aws.s3.BucketPublicAccessBlock(
            f"{name}-public-access",
            bucket=self.bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=child,
        )
        aws.s3.BucketVersioning(
            f"{name}-versioning",
            bucket=self.bucket.id,
            versioning_configuration={"status": "Enabled"},
            opts=child,
        )
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption",
            bucket=self.bucket.id,
            rules=[
                {
                    "apply_server_side_encryption_by_default": {
                        "sse_algorithm": "aws:kms",
                        "kms_master_key_id": key_arn,
                    },
                    "bucket_key_enabled": True,
                }
            ],
            opts=child,
        )
        # S3 rejects concurrent configuration calls on one bucket (409 OperationAborted): the
        # policy waits for the public-access block and ownership controls.
        aws.s3.BucketPolicy(
            f"{name}-policy",
            bucket=self.bucket.id,
            policy=self.bucket.arn.apply(lambda arn: iam.to_json(iam.tls_only_bucket_policy(arn))),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[public_access, ownership]),
        )
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle",
            bucket=self.bucket.id,
            rules=lifecycle_rules(spec, noncurrent_days),  # type: ignore[arg-type]
            opts=child,
        )
        self.name = self.bucket.bucket
        self.arn = self.bucket.arn
        self.register_outputs({"name": self.name, "arn": self.arn})


class Storage(pulumi.ComponentResource):
    """All four buckets, by ``ResourceNames`` field."""

    buckets: Mapping[str, SecureBucket]

    def __init__(
        self,
        name: str,
        context: AwsContext,
        key_arn: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("edgescribe:storage:Storage", name, None, opts)
        config = context.config
        buckets: dict[str, SecureBucket] = {}
        for spec in bucket_specs(config.recording_retention_days, config.transcript_retention_days):
            logical = spec.field_name.removesuffix("_bucket")
            buckets[spec.field_name] = SecureBucket(
                logical,
                bucket_name=getattr(config.names, spec.field_name),
                spec=spec,
                key_arn=key_arn,
                noncurrent_days=config.noncurrent_version_days,
                protect=config.deletion_protection,
                opts=pulumi.ResourceOptions(parent=self),
            )
        self.buckets = buckets
        self.register_outputs({field: bucket.name for field, bucket in buckets.items()})

    def arns(self) -> pulumi.Output[dict[str, str]]:
        """Bucket ARNs by ``ResourceNames`` field, as one output."""
        fields = list(self.buckets)
        return pulumi.Output.all(*(self.buckets[f].arn for f in fields)).apply(
            lambda arns: dict(zip(fields, arns, strict=True))
        )
