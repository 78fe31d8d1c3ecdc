"""Wire the components into one platform, and name the stack outputs.

Order of construction follows the data: key → alarm topic → buckets → queues (+ S3 notification) →
tables, signing key, training role → inference → images → functions (+ their triggers) → API →
schedules → dashboard. Functions are deployed only once ``imageTag`` is set (their images must be in
ECR first; see docs/deploy.md "first deployment"), everything else on the first ``pulumi up``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi

from infra import access
from infra.catalog import FUNCTIONS, FunctionSpec
from infra.components.api import HttpApi, api_routes, read_openapi
from infra.components.context import AwsContext
from infra.components.encryption import PlatformKey
from infra.components.fleet import FleetTables, ModelSigningKey, TrainingRole
from infra.components.functions import PlatformArns, PlatformFunction, VpcPlacement
from infra.components.images import FunctionImages
from infra.components.inference import INFERENCE_VARIABLE, EcsTriton, SageMakerTriton
from infra.components.observability import AlarmTopic, PlatformDashboard
from infra.components.queues import ScheduleDeadLetters, TranscriptionQueues
from infra.components.schedules import Schedules
from infra.components.storage import Storage
from infra.naming import prefix
from infra.stack_config import PlatformConfig

#: Schedule name -> function key.
SCHEDULED_FUNCTIONS = {
    "retraining": "retraining-trigger",
    "refresh-manifests": "model-distribution",
    # ``functions.model_distribution.ADVANCE_SCHEDULE``: the learning loop's promotion decision
    "advance-candidates": "model-distribution",
}
#: ``functions.distribution.signing.SIGNING_KEY_SECRET_VARIABLE`` (a test holds the two together).
SIGNING_KEY_SECRET_VARIABLE = "EDGESCRIBE_SIGNING_KEY_SECRET_ID"  # noqa: S105 - a variable name
#: ``functions.inference.selection.MODEL_CHANNEL_VARIABLE`` (a test holds the two together): the
#: transcribing functions' in-process model follows this channel, so a full rollout (the learning
#: loop's promote to stable) reaches the cloud's transcripts as well as the devices.
MODEL_CHANNEL_VARIABLE = "EDGESCRIBE_MODEL_CHANNEL"
FOLLOWED_CHANNEL = "stable"


@dataclass
class Platform:
    """Every component of one stack (what the tests and the stack outputs look at)."""

    context: AwsContext
    key: PlatformKey
    alarms: AlarmTopic
    storage: Storage
    queues: TranscriptionQueues
    schedule_dead_letters: ScheduleDeadLetters
    tables: FleetTables
    signing_key: ModelSigningKey
    training: TrainingRole
    images: FunctionImages
    inference: SageMakerTriton | EcsTriton | None
    functions: dict[str, PlatformFunction] = field(default_factory=dict)
    api: HttpApi | None = None
    schedules: Schedules | None = None
    dashboard: PlatformDashboard | None = None


def build_platform(config: PlatformConfig) -> Platform:
    context = AwsContext.current(config)
    key = PlatformKey("platform", context)
    alarms = AlarmTopic("alarms", context, key.arn)
    storage = Storage("storage", context, key.arn)
    recordings = storage.buckets["recordings_bucket"]
    models = storage.buckets["models_bucket"]
    queues = TranscriptionQueues(
        "transcription",
        context,
        recordings_bucket_id=recordings.bucket.id,
        recordings_bucket_arn=recordings.arn,
        topic_arn=alarms.arn,
    )
    schedule_dead_letters = ScheduleDeadLetters("schedules", context, topic_arn=alarms.arn)
    tables = FleetTables("fleet", context, key.arn)
    signing_key = ModelSigningKey("model-signing", context, key.arn)
    training = TrainingRole(
        "training",
        context,
        recordings_bucket_arn=recordings.arn,
        models_bucket_arn=models.arn,
        key_arn=key.arn,
    )
    inference = _inference(context, models.name, models.arn, key.arn, alarms.arn)
    images = FunctionImages("images", context)
    platform = Platform(
        context=context,
        key=key,
        alarms=alarms,
        storage=storage,
        queues=queues,
        schedule_dead_letters=schedule_dead_letters,
        tables=tables,
        signing_key=signing_key,
        training=training,
        images=images,
        inference=inference,
    )
    if config.image_tag is None:
        pulumi.log.warn(
            "edgescribe:imageTag is not set: deploying storage, queues, tables, inference and the "
            "image repositories only. Build and push the function images "
            "(python -m infra.bundle build; docs/deploy.md), then set edgescribe:imageTag."
        )
    else:
        _functions(platform, config.image_tag)
    platform.dashboard = PlatformDashboard(
        "dashboard",
        context,
        functions=[fn.function.name for fn in platform.functions.values()],
        queue=queues.queue.name,
        dead_letter_queue=queues.dead_letter_queue.name,
        api_id=platform.api.api.id if platform.api else None,
        endpoint=inference.endpoint_name if isinstance(inference, SageMakerTriton) else None,
    )
    return platform


def _inference(
    context: AwsContext,
    models_bucket: pulumi.Output[str],
    models_bucket_arn: pulumi.Output[str],
    key_arn: pulumi.Output[str],
    topic_arn: pulumi.Output[str],
) -> SageMakerTriton | EcsTriton | None:
    mode = context.config.inference.mode
    if mode == "sagemaker":
        return SageMakerTriton(
            "inference",
            context,
            models_bucket=models_bucket,
            models_bucket_arn=models_bucket_arn,
            key_arn=key_arn,
            topic_arn=topic_arn,
        )
    if mode == "ecs":
        return EcsTriton(
            "inference",
            context,
            models_bucket=models_bucket,
            models_bucket_arn=models_bucket_arn,
            key_arn=key_arn,
            topic_arn=topic_arn,
        )
    return None


def _functions(platform: Platform, image_tag: str) -> None:
    context = platform.context
    config = context.config
    inference = platform.inference
    arns = PlatformArns(
        buckets=platform.storage.arns(),
        tables=platform.tables.arns(),
        queues=pulumi.Output.all(
            platform.queues.queue.arn, platform.schedule_dead_letters.queue.arn
        ).apply(lambda parts: {"transcription_queue": parts[0], access.SCHEDULE_DLQ: parts[1]}),
        data_key=platform.key.arn,
        inference_endpoint=(
            inference.endpoint_arn if isinstance(inference, SageMakerTriton) else None
        ),
        training_role=platform.training.role.arn,
        training_jobs=platform.training.jobs_arn,
        signing_key_secret=platform.signing_key.secret.arn,
        vpc_network=inference.network_arns(context) if isinstance(inference, EcsTriton) else None,
    )
    vpc = (
        VpcPlacement(inference.subnet_ids, inference.client_security_group.id)
        if isinstance(inference, EcsTriton)
        else None
    )
    inference_environment: dict[str, pulumi.Input[str]] = (
        inference.environment() if inference is not None else {INFERENCE_VARIABLE: "onnxruntime"}
    )
    for spec in FUNCTIONS:
        platform.functions[spec.key] = PlatformFunction(
            spec.key,
            context,
            spec=spec,
            image_uri=platform.images.image_uri(spec.image, image_tag),
            arns=arns,
            environment=_environment(platform, spec, inference_environment),
            topic_arn=platform.alarms.arn,
            vpc=vpc,
        )

    batch = platform.functions["batch-transcription"]
    batch.consume_queue(
        platform.queues.queue.arn,
        batch_size=config.batch_size,
        max_concurrency=config.batch_max_concurrency,
    )
    api_function = platform.functions["api"]
    platform.api = HttpApi(
        "api",
        context,
        routes=api_routes(read_openapi()),
        function_arn=api_function.function.arn,
        function_invoke_arn=api_function.function.invoke_arn,
        key_arn=platform.key.arn,
        topic_arn=platform.alarms.arn,
    )
    expressions = {
        "retraining": config.retraining_schedule,
        "refresh-manifests": config.distribution_schedule,
        "advance-candidates": config.advance_schedule,
    }
    dead_letters = platform.schedule_dead_letters.queue.arn
    for function_key in SCHEDULED_FUNCTIONS.values():
        platform.functions[function_key].report_failed_runs(dead_letters)
    platform.schedules = Schedules(
        "schedules",
        context,
        targets={
            schedule: (expressions[schedule], platform.functions[function_key].function.arn)
            for schedule, function_key in SCHEDULED_FUNCTIONS.items()
        },
        dead_letter_arn=dead_letters,
    )


def _environment(
    platform: Platform,
    spec: FunctionSpec,
    inference_environment: dict[str, pulumi.Input[str]],
) -> dict[str, pulumi.Input[str]]:
    """Per-function variables beyond the resource names every function gets."""
    config = platform.context.config
    environment: dict[str, pulumi.Input[str]] = {}
    if spec.uses_inference:
        environment.update(inference_environment)
        environment[MODEL_CHANNEL_VARIABLE] = FOLLOWED_CHANNEL
    if spec.key == "retraining-trigger":
        environment.update(
            {
                "EDGESCRIBE_TRAINING_ROLE_ARN": platform.training.role.arn,
                "EDGESCRIBE_TRAINING_INSTANCE_TYPE": config.training_instance_type,
                "EDGESCRIBE_TRAINING_OUTPUT_URI": platform.storage.buckets[
                    "models_bucket"
                ].name.apply(lambda bucket: f"s3://{bucket}/{access.TRAINING}"),
                # Job names must start with this: the trigger may start only such jobs (IAM).
                "EDGESCRIBE_TRAINING_JOB_PREFIX": prefix(config.names),
            }
        )
        if config.training_image_uri is not None:
            environment["EDGESCRIBE_TRAINING_IMAGE_URI"] = config.training_image_uri
    if spec.key == "model-distribution":
        environment[SIGNING_KEY_SECRET_VARIABLE] = platform.signing_key.secret.arn
    if spec.key == "api":
        # API Gateway's JWT authorizer verifies tokens; the function reads the verified claims.
        environment.update(
            {
                "EDGESCRIBE_AUTH_MODE": "gateway",
                "EDGESCRIBE_JWT_TENANT_CLAIM": config.api.tenant_claim,
                "EDGESCRIBE_JWT_ROLE_CLAIM": config.api.role_claim,
            }
        )
    return environment


def stack_outputs(platform: Platform) -> dict[str, pulumi.Input[object]]:
    """What ``pulumi stack output`` shows: where to upload, what to call, what to watch."""
    names = platform.context.names
    outputs: dict[str, pulumi.Input[object]] = {
        "stack": names.stack,
        "recordingsBucket": platform.storage.buckets["recordings_bucket"].name,
        "transcriptsBucket": platform.storage.buckets["transcripts_bucket"].name,
        "modelsBucket": platform.storage.buckets["models_bucket"].name,
        "feedbackBucket": platform.storage.buckets["feedback_bucket"].name,
        "transcriptionQueueUrl": platform.queues.queue.url,
        "transcriptionDeadLetterQueueUrl": platform.queues.dead_letter_queue.url,
        "idempotencyTable": platform.tables.tables["idempotency_table"].name,
        "jobsTable": platform.tables.tables["jobs_table"].name,
        "devicesTable": platform.tables.tables["devices_table"].name,
        "imageRepositories": {
            image: repository.repository_url
            for image, repository in platform.images.repositories.items()
        },
        "signingKeySecretArn": platform.signing_key.secret.arn,
        "alarmTopicArn": platform.alarms.arn,
        "inferenceMode": platform.context.config.inference.mode,
    }
    if isinstance(platform.inference, SageMakerTriton):
        outputs["inferenceEndpointName"] = platform.inference.endpoint_name
    elif isinstance(platform.inference, EcsTriton):
        outputs["inferenceUrl"] = platform.inference.url
    if platform.api is not None:
        outputs["apiUrl"] = platform.api.url
        outputs["jwtIssuer"] = platform.api.issuer
    if platform.functions:
        outputs["functionNames"] = {
            key: function.function.name for key, function in platform.functions.items()
        }
    return outputs
