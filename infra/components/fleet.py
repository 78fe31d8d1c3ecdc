"""Fleet and jobs: the DynamoDB tables, the model-signing key, the SageMaker training role.

Tables take their key schemas from ``edgescribe.settings.TABLE_KEYS`` (the local stack builds the same
tables from the same schemas): on-demand billing (traffic is bursty and small), point-in-time recovery
(35 days of undo for the device registry and job history), KMS encryption with the platform key, TTL
where the schema names a TTL attribute (idempotency records and finished jobs expire by themselves),
and deletion protection unless the stack opts out.

The model-signing key is a Secrets Manager secret (Ed25519 private key, PEM) that only the
model-distribution function may read; the stack creates the empty secret, the operator puts the key
in (docs/deploy.md), so the private key never passes through Pulumi state.
"""

from __future__ import annotations

from collections.abc import Mapping

import pulumi
import pulumi_aws as aws

from edgescribe.settings import TABLE_KEYS
from infra import access, iam
from infra.components.context import AwsContext
from infra.naming import infra_name, prefix


class FleetTables(pulumi.ComponentResource):
    tables: Mapping[str, aws.dynamodb.Table]

    def __init__(
        self,
        name: str,
        context: AwsContext,
        key_arn: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("edgescribe:fleet:FleetTables", name, None, opts)
        config = context.config
        tables: dict[str, aws.dynamodb.Table] = {}
        for field_name, keys in TABLE_KEYS.items():
            attributes = [aws.dynamodb.TableAttributeArgs(name=keys.partition_key, type="S")]
            if keys.sort_key is not None:
                attributes.append(aws.dynamodb.TableAttributeArgs(name=keys.sort_key, type="S"))
            tables[field_name] = aws.dynamodb.Table(
                field_name.removesuffix("_table"),
                name=getattr(config.names, field_name),
                billing_mode="PAY_PER_REQUEST",
                hash_key=keys.partition_key,
                range_key=keys.sort_key,
                attributes=attributes,
                point_in_time_recovery=aws.dynamodb.TablePointInTimeRecoveryArgs(enabled=True),
                server_side_encryption=aws.dynamodb.TableServerSideEncryptionArgs(
                    enabled=True, kms_key_arn=key_arn
                ),
                ttl=(
                    aws.dynamodb.TableTtlArgs(attribute_name=keys.ttl_attribute, enabled=True)
                    if keys.ttl_attribute
                    else None
                ),
                deletion_protection_enabled=config.deletion_protection,
                opts=pulumi.ResourceOptions(parent=self, protect=config.deletion_protection),
            )
        self.tables = tables
        self.register_outputs({field: table.name for field, table in tables.items()})

    def arns(self) -> pulumi.Output[dict[str, str]]:
        fields = list(self.tables)
        return pulumi.Output.all(*(self.tables[f].arn for f in fields)).apply(
            lambda arns: dict(zip(fields, arns, strict=True))
        )


class ModelSigningKey(pulumi.ComponentResource):
    secret: aws.secretsmanager.Secret

    def __init__(
        self,
        name: str,
        context: AwsContext,
        key_arn: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("edgescribe:fleet:ModelSigningKey", name, None, opts)
        self.secret = aws.secretsmanager.Secret(
            f"{name}-secret",
            name=f"{prefix(context.names)}/model-signing-key",
            description="Ed25519 private key (PEM) that signs model manifests; put by the operator",
            kms_key_id=key_arn,
            recovery_window_in_days=30,
            opts=pulumi.ResourceOptions(parent=self, protect=context.config.deletion_protection),
        )
        self.register_outputs({"arn": self.secret.arn})


def training_statements(
    *,
    recordings_bucket_arn: str,
    models_bucket_arn: str,
    key_arn: str,
    log_group_arn: str,
    training_image_repository_arn: str | None,
) -> list[iam.Statement]:
    """What a training job may do (pure): read its spec, data manifests and the stable checkpoint
    (``training/``), the audio they reference (``recordings/``, read where it lies, never copied)
    and the published models the gate compares against (``models/``); write its candidate, gate
    report and job record (``training/``); log."""
    statements: list[iam.Statement] = [
        {
            "Sid": "ReadTrainingData",
            "Effect": "Allow",
            "Action": ["s3:GetObject"],
            "Resource": [
                f"{recordings_bucket_arn}/{access.RECORDINGS}*",
                f"{models_bucket_arn}/{access.MODELS}*",
                f"{models_bucket_arn}/{access.TRAINING}*",
            ],
        },
        {
            "Sid": "ListTrainingData",
            "Effect": "Allow",
            "Action": ["s3:ListBucket"],
            "Resource": [models_bucket_arn],
        },
        {
            "Sid": "WriteCandidates",
            "Effect": "Allow",
            "Action": ["s3:PutObject"],
            "Resource": [f"{models_bucket_arn}/{access.TRAINING}*"],
        },
        {
            "Sid": "PlatformDataKey",
            "Effect": "Allow",
            "Action": ["kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"],
            "Resource": [key_arn],
        },
        {
            "Sid": "TrainingJobLogs",
            "Effect": "Allow",
            "Action": [
                "logs:CreateLogGroup",
                "logs:CreateLogStream",
                "logs:DescribeLogStreams",
                "logs:PutLogEvents",
            ],
            "Resource": [log_group_arn, f"{log_group_arn}:*"],
        },
    ]
    if training_image_repository_arn is not None:
        statements += [
            {
                "Sid": "PullTrainingImage",
                "Effect": "Allow",
                "Action": [
                    "ecr:BatchCheckLayerAvailability",
                    "ecr:BatchGetImage",
                    "ecr:GetDownloadUrlForLayer",
                ],
                "Resource": [training_image_repository_arn],
            },
            {
                "Sid": "RegistryLogin",
                "Effect": "Allow",
                "Action": ["ecr:GetAuthorizationToken"],
                "Resource": "*",
            },
        ]
    return statements


class TrainingRole(pulumi.ComponentResource):
    """The role SageMaker training jobs run as (passed by the retraining trigger)."""

    role: aws.iam.Role
    jobs_arn: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        context: AwsContext,
        *,
        recordings_bucket_arn: pulumi.Input[str],
        models_bucket_arn: pulumi.Input[str],
        key_arn: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("edgescribe:fleet:TrainingRole", name, None, opts)
        names = context.names
        child = pulumi.ResourceOptions(parent=self)
        self.role = aws.iam.Role(
            f"{name}-role",
            name=infra_name(names, "training-role"),
            description="SageMaker training jobs started by the retraining trigger",
            assume_role_policy=context.account_id.apply(
                lambda account: iam.to_json(
                    iam.assume_role_policy("sagemaker.amazonaws.com", source_account=account)
                )
            ),
            opts=child,
        )
        image = context.config.training_image_uri
        log_group_arn = context.arn("logs", "log-group:/aws/sagemaker/TrainingJobs")
        aws.iam.RolePolicy(
            f"{name}-policy",
            role=self.role.id,
            policy=pulumi.Output.all(
                recordings_bucket_arn, models_bucket_arn, key_arn, log_group_arn, context.partition
            ).apply(
                lambda parts: iam.to_json(
                    iam.policy_document(
                        training_statements(
                            recordings_bucket_arn=parts[0],
                            models_bucket_arn=parts[1],
                            key_arn=parts[2],
                            log_group_arn=parts[3],
                            training_image_repository_arn=(
                                iam.ecr_repository_arn(image, parts[4]) if image else None
                            ),
                        )
                    )
                )
            ),
            opts=child,
        )
        self.jobs_arn = context.arn("sagemaker", f"training-job/{prefix(names)}-*")
        self.register_outputs({"arn": self.role.arn})
