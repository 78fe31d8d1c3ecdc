"""What each cloud function may touch, as one table, and the IAM statements generated from it.

Least privilege is easier to review as data than as scattered policy JSON: this table says, per
function, which bucket prefixes it may read or write, which tables and queues it uses and with which
actions. ``function_statements`` turns a row into IAM statements against concrete ARNs; the Pulumi
component only supplies the ARNs. The tests in ``tests/infra`` check the generated policies against an
independent expectation (each function reaches only its own buckets, queues and tables) and that no
statement grants ``"*"`` as an action, or as a resource beyond rule 4.

Rules the table follows:

1. Object actions are scoped to the key prefixes of ``models.runtime.storage_layout`` (a function that
   writes transcripts cannot overwrite a model).
2. ``s3:ListBucket`` is granted on a bucket whose keys a function probes with ``HeadObject``: without
   it S3 answers a missing key with 403 instead of 404, and the function would treat "not there yet" as
   an outage and retry into the dead-letter queue.
3. Logs go only to the function's own log group (infra creates it, so no ``logs:CreateLogGroup``).
4. No ``"*"`` resources, except for the few AWS APIs that cannot be scoped at all (``ec2:Describe*``
   for a VPC function's network interfaces): they appear only in ECS mode, in a statement of their
   own, and the policy tests allow exactly those (``VPC_DESCRIBE_ACTIONS``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

#: Key prefixes, as ``models.runtime.storage_layout`` builds keys (a test holds the two together).
RECORDINGS: Final = "recordings/"
TRANSCRIPTS: Final = "transcripts/"
ERRORS: Final = "errors/"
SHADOW: Final = "shadow/"
MODELS: Final = "models/"
CHANNELS: Final = "models/channels/"
TRITON: Final = "triton/"
FEEDBACK: Final = "feedback/"
#: The learning loop's verdict on each feedback record (in the feedback bucket).
ASSESSMENTS: Final = "assessments/"
#: Training jobs (records, specs, data manifests, candidates) and their output (models bucket).
TRAINING: Final = "training/"
TRAINING_JOBS: Final = "training/jobs/"

READ: Final = ("s3:GetObject", "s3:GetObjectVersion")
WRITE: Final = ("s3:PutObject",)
DELETE: Final = ("s3:DeleteObject",)

#: What Lambda reads to place a function in a VPC; AWS cannot scope these to a resource.
VPC_DESCRIBE_ACTIONS: Final = (
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeSubnets",
    "ec2:DescribeVpcs",
)

#: Actions AWS does not allow to be scoped to a resource: the only ones any role of the platform
#: may be granted on ``"*"`` (registry login for the Triton roles; ``Describe*`` for VPC functions).
UNSCOPABLE_ACTIONS: Final = frozenset({"ecr:GetAuthorizationToken", *VPC_DESCRIBE_ACTIONS})

#: What Lambda needs to place a function in a VPC (ECS mode only): create, attach and delete its
#: own network interfaces, scoped to the account's network-interface, subnet and security-group ARNs.
VPC_NETWORK_INTERFACE_ACTIONS: Final = (
    "ec2:CreateNetworkInterface",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
)


@dataclass(frozen=True)
class ObjectGrant:
    """Object-level actions on some prefixes of one bucket (a ``ResourceNames`` field)."""

    bucket: str
    prefixes: tuple[str, ...]
    actions: tuple[str, ...]


@dataclass(frozen=True)
class TableGrant:
    """Item-level actions on one table (a ``ResourceNames`` field), optionally its indexes."""

    table: str
    actions: tuple[str, ...]
    include_indexes: bool = False


@dataclass(frozen=True)
class QueueGrant:
    """Actions on one queue: a ``ResourceNames`` field, or ``SCHEDULE_DLQ`` (infra-only)."""

    queue: str
    actions: tuple[str, ...]


@dataclass(frozen=True)
class FunctionAccess:
    objects: tuple[ObjectGrant, ...] = ()
    #: Buckets (``ResourceNames`` fields) the function may list (rule 2 above).
    listing: tuple[str, ...] = ()
    tables: tuple[TableGrant, ...] = ()
    queues: tuple[QueueGrant, ...] = ()
    #: Starts and watches SageMaker training jobs, passing the training role.
    starts_training: bool = False
    #: Reads the model-signing key from Secrets Manager.
    reads_signing_key: bool = False


_IDEMPOTENCY = TableGrant(
    "idempotency_table",
    ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"),
)

#: Event source mapping: Lambda polls the queue with the function's role.
_CONSUME = ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility")
_CONSUME_ALL = (*_CONSUME, "sqs:GetQueueAttributes")

#: Scheduled functions run asynchronously; a run that still fails after Lambda's retries is sent to
#: the schedules' dead-letter queue (with the function's own role), where an alarm sees it.
SCHEDULE_DLQ: Final = "schedule_dlq"
_REPORT_FAILED_RUN = QueueGrant(SCHEDULE_DLQ, ("sqs:SendMessage",))

FUNCTION_ACCESS: Final[Mapping[str, FunctionAccess]] = {
    "batch-transcription": FunctionAccess(
        objects=(
            ObjectGrant("recordings_bucket", (RECORDINGS,), READ),
            ObjectGrant("transcripts_bucket", (TRANSCRIPTS, ERRORS, SHADOW), READ + WRITE + DELETE),
            # The shadow channel and its model (the learning loop's shadow runs), and the stable
            # channel and its model, which the in-process transcriber follows.
            ObjectGrant("models_bucket", (MODELS,), READ),
        ),
        listing=("recordings_bucket", "transcripts_bucket", "models_bucket"),
        # One transcript per upload: powertools idempotency records.
        tables=(_IDEMPOTENCY,),
        queues=(QueueGrant("transcription_queue", _CONSUME_ALL),),
    ),
    "api": FunctionAccess(
        objects=(
            # Pre-signed upload URLs are signed with the function's credentials; feedback and job
            # status check that a referenced recording exists.
            ObjectGrant("recordings_bucket", (RECORDINGS,), READ + WRITE),
            # Synchronous transcripts and devices' offline transcripts are stored like batch
            # results (never deleted; offline uploads never overwrite: If-None-Match)...
            ObjectGrant("transcripts_bucket", (TRANSCRIPTS,), READ + WRITE),
            # ...while error records are the batch function's alone: job status only reads them.
            ObjectGrant("transcripts_bucket", (ERRORS,), READ),
            ObjectGrant("feedback_bucket", (FEEDBACK,), READ + WRITE),
            # Manifests, channel files and pre-signed model downloads for devices (and the stable
            # model the in-process transcriber follows)...
            ObjectGrant("models_bucket", (MODELS,), READ),
            # ...and admins' promote / rollback, which rewrite channel files (never models).
            ObjectGrant("models_bucket", (CHANNELS,), WRITE),
        ),
        listing=("recordings_bucket", "transcripts_bucket", "feedback_bucket", "models_bucket"),
        tables=(
            # Long-audio jobs: created with their upload URL, read back by their owner.
            TableGrant("jobs_table", ("dynamodb:GetItem", "dynamodb:PutItem")),
            # The fleet registry: device heartbeats, channel assignment, the admin device list.
            TableGrant(
                "devices_table",
                ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Scan"),
            ),
        ),
    ),
    "retraining-trigger": FunctionAccess(
        objects=(
            # Reads feedback, writes one assessment per record (If-None-Match: never overwrites).
            ObjectGrant("feedback_bucket", (FEEDBACK,), READ),
            ObjectGrant("feedback_bucket", (ASSESSMENTS,), READ + WRITE),
            # The stable channel names the base model; published versions are found by listing.
            ObjectGrant("models_bucket", (CHANNELS,), READ),
            # Job records, specs and data manifests. Recordings are referenced by key, never read.
            ObjectGrant("models_bucket", (TRAINING,), READ + WRITE),
        ),
        listing=("feedback_bucket", "models_bucket"),
        queues=(_REPORT_FAILED_RUN,),
        starts_training=True,
    ),
    "model-distribution": FunctionAccess(
        objects=(
            ObjectGrant("models_bucket", (MODELS, TRITON, TRAINING), READ),
            ObjectGrant("models_bucket", (MODELS, TRITON), WRITE),
            # The learning loop's promotion decision (``advance``): job records it moves along,
            # the shadow results and the assessed corrections it judges a candidate by.
            ObjectGrant("models_bucket", (TRAINING_JOBS,), WRITE),
            ObjectGrant("transcripts_bucket", (SHADOW,), READ),
            ObjectGrant("feedback_bucket", (ASSESSMENTS,), READ),
        ),
        listing=("models_bucket", "transcripts_bucket", "feedback_bucket"),
        # ...and the fleet's health for the canary gate (every device's last heartbeat).
        tables=(TableGrant("devices_table", ("dynamodb:Scan",)),),
        queues=(_REPORT_FAILED_RUN,),
        reads_signing_key=True,
    ),
}


@dataclass(frozen=True)
class ResolvedArns:
    """Concrete ARNs for one stack (plain strings: resolved Pulumi outputs, or test values)."""

    buckets: Mapping[str, str]
    tables: Mapping[str, str]
    queues: Mapping[str, str]
    data_key: str
    log_group: str
    #: SageMaker endpoint ARN when inference runs on SageMaker.
    inference_endpoint: str | None = None
    training_role: str | None = None
    #: ``arn:...:training-job/<prefix>-*``: the jobs this stack may start.
    training_jobs: str | None = None
    signing_key_secret: str | None = None
    #: ECS mode: the account/region ARN prefix for network interfaces, subnets and security groups.
    vpc_network: tuple[str, ...] = ()


def function_statements(
    access: FunctionAccess, arns: ResolvedArns, *, invokes_inference: bool
) -> list[dict[str, Any]]:
    """The IAM statements of one function's role, generated from its row of the table."""
    statements: list[dict[str, Any]] = [
        {
            "Sid": "OwnLogGroup",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": [arns.log_group, f"{arns.log_group}:*"],
        },
        {
            # Buckets and tables are encrypted with the platform key; the grants stay usable only
            # through those services.
            "Sid": "PlatformDataKey",
            "Effect": "Allow",
            "Action": ["kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"],
            "Resource": [arns.data_key],
        },
    ]
    for index, grant in enumerate(access.objects):
        bucket_arn = arns.buckets[grant.bucket]
        statements.append(
            {
                "Sid": f"Objects{index}",
                "Effect": "Allow",
                "Action": sorted(grant.actions),
                "Resource": [f"{bucket_arn}/{prefix}*" for prefix in grant.prefixes],
            }
        )
    if access.listing:
        statements.append(
            {
                "Sid": "ListOwnBuckets",
                "Effect": "Allow",
                "Action": ["s3:ListBucket"],
                "Resource": sorted(arns.buckets[bucket] for bucket in access.listing),
            }
        )
    for index, table in enumerate(access.tables):
        table_arn = arns.tables[table.table]
        resources = [table_arn, f"{table_arn}/index/*"] if table.include_indexes else [table_arn]
        statements.append(
            {
                "Sid": f"Table{index}",
                "Effect": "Allow",
                "Action": sorted(table.actions),
                "Resource": resources,
            }
        )
    for index, queue in enumerate(access.queues):
        statements.append(
            {
                "Sid": f"Queue{index}",
                "Effect": "Allow",
                "Action": sorted(queue.actions),
                "Resource": [arns.queues[queue.queue]],
            }
        )
    if invokes_inference and arns.inference_endpoint:
        statements.append(
            {
                "Sid": "InvokeInferenceEndpoint",
                "Effect": "Allow",
                "Action": ["sagemaker:InvokeEndpoint"],
                "Resource": [arns.inference_endpoint],
            }
        )
    if access.starts_training:
        if not arns.training_role or not arns.training_jobs:
            raise ValueError("a function that starts training needs the training role and job ARNs")
        statements += [
            {
                "Sid": "StartTrainingJobs",
                "Effect": "Allow",
                "Action": [
                    "sagemaker:AddTags",
                    "sagemaker:CreateTrainingJob",
                    "sagemaker:DescribeTrainingJob",
                    "sagemaker:StopTrainingJob",
                ],
                "Resource": [arns.training_jobs],
            },
            {
                "Sid": "PassTrainingRole",
                "Effect": "Allow",
                "Action": ["iam:PassRole"],
                "Resource": [arns.training_role],
                "Condition": {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            },
        ]
    if access.reads_signing_key:
        if not arns.signing_key_secret:
            raise ValueError("a function that signs manifests needs the signing-key secret ARN")
        statements.append(
            {
                "Sid": "ReadModelSigningKey",
                "Effect": "Allow",
                "Action": ["secretsmanager:GetSecretValue"],
                "Resource": [arns.signing_key_secret],
            }
        )
    if invokes_inference and arns.vpc_network:
        statements += [
            {
                "Sid": "OwnNetworkInterfaces",
                "Effect": "Allow",
                "Action": list(VPC_NETWORK_INTERFACE_ACTIONS),
                "Resource": list(arns.vpc_network),
            },
            {
                "Sid": "DescribeNetwork",
                "Effect": "Allow",
                "Action": sorted(VPC_DESCRIBE_ACTIONS),
                "Resource": "*",
            },
        ]
    return statements
