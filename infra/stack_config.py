"""The stack's settings: every ``edgescribe:*`` config key, its default, and its validation.

All keys are read and checked here, before any resource is declared, so a typo or an impossible value
stops ``pulumi up`` with one message naming the key (``InfraConfigError``) instead of a half-applied
stack or a cryptic provider error minutes later. Unknown ``edgescribe:*`` keys are errors too: a
misspelt ``recordingRetentionDay`` must not silently fall back to the default.

``Pulumi.example.yaml`` documents every key; ``KEYS`` below is the authoritative list.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final, Literal, TypeVar, cast

from edgescribe.settings import ResourceNames

NAMESPACE: Final = "edgescribe"

InferenceMode = Literal["sagemaker", "ecs", "none"]

#: CloudWatch Logs accepts only these retention periods.
LOG_RETENTION_DAYS: Final = frozenset(
    {
        1,
        3,
        5,
        7,
        14,
        30,
        60,
        90,
        120,
        150,
        180,
        365,
        400,
        545,
        731,
        1096,
        1827,
        2192,
        2557,
        2922,
        3288,
        3653,
    }
)

#: Key -> one-line meaning (also the list of accepted keys).
KEYS: Final[Mapping[str, str]] = {
    "imageTag": "tag of the function images in ECR; unset = deploy everything but the functions",
    "recordingRetentionDays": "days before raw recordings expire (default 30)",
    "noncurrentVersionDays": "days before overwritten/deleted object versions expire (default 30)",
    "transcriptRetentionDays": "days before transcripts expire (default: kept)",
    "logRetentionDays": "CloudWatch Logs retention for every log group (default 30)",
    "alarmEmail": "address subscribed to the alarm topic (optional)",
    "deletionProtection": "protect tables, buckets' data and the key from deletion (default true)",
    "batchSize": "SQS messages per batch-transcription invocation (default 4, 1-10)",
    "batchMaxConcurrency": "most concurrent batch-transcription invocations (default 10)",
    "oldestMessageAlarmSeconds": "alarm when a recording waits longer than this (default 3600)",
    "inferenceMode": "sagemaker | ecs | none: where Triton runs (default sagemaker)",
    "tritonImageUri": "Triton container image (required unless inferenceMode is none)",
    "tritonModelName": "model name in the Triton repository (default edgescribe-cloud)",
    "tritonModelVersion": "model version Triton serves (required unless inferenceMode is none)",
    "inferenceInstanceType": "GPU instance type (default ml.g4dn.xlarge / g4dn.xlarge)",
    "inferenceMinCapacity": "fewest inference instances (default 1)",
    "inferenceMaxCapacity": "most inference instances (default 4)",
    "invocationsPerInstanceTarget": "SageMaker autoscaling target, invocations/min (default 600)",
    "vpcId": "VPC of the ECS service and its internal load balancer (ecs mode)",
    "subnetIds": "private subnets (at least two) for ECS, the load balancer and VPC functions",
    "jwtIssuer": "JWT issuer URL for the API authorizer (default: a Cognito user pool)",
    "jwtAudiences": "accepted JWT audiences (required with jwtIssuer)",
    "jwtTenantClaim": "claim naming the caller's tenant (default tenant; custom:tenant on Cognito)",
    "jwtRoleClaim": "claim naming the caller's role (default role; custom:role on Cognito)",
    "apiThrottleRate": "API steady-state requests per second (default 50)",
    "apiThrottleBurst": "API burst requests (default 100)",
    "syncTranscriptionThrottleRate": "POST /v1/transcriptions requests per second (default 10)",
    "apiDomainName": "custom domain for the API (optional, with apiCertificateArn)",
    "apiCertificateArn": "ACM certificate ARN for apiDomainName",
    "retrainingSchedule": "EventBridge schedule of the retraining trigger (default rate(1 day))",
    "distributionSchedule": "schedule of the manifest refresh (default rate(12 hours))",
    "advanceSchedule": "schedule of the learning loop's promotion decision (default rate(1 hour))",
    "trainingImageUri": "SageMaker training image the retraining trigger starts (optional)",
    "trainingInstanceType": "SageMaker training instance type (default ml.g5.xlarge)",
}


class InfraConfigError(ValueError):
    """A stack setting that is missing, misspelt or impossible; the message names the key."""

    def __init__(self, key: str, reason: str) -> None:
        self.key = key
        self.reason = reason
        super().__init__(
            f"{NAMESPACE}:{key}: {reason} (see Pulumi.example.yaml; "
            f"`pulumi config set {NAMESPACE}:{key} ...`)"
        )


@dataclass(frozen=True)
class InferenceConfig:
    mode: InferenceMode
    triton_image_uri: str | None
    model_name: str
    #: The version the functions record in transcripts (``TRITON_MODEL_VERSION``). On SageMaker a
    #: new version also replaces the model (a blue/green endpoint update), which is when SageMaker
    #: rereads the repository; ECS polls the bucket instead.
    model_version: int
    instance_type: str
    min_capacity: int
    max_capacity: int
    invocations_per_instance_target: int
    vpc_id: str | None
    subnet_ids: tuple[str, ...]


@dataclass(frozen=True)
class ApiConfig:
    jwt_issuer: str | None
    jwt_audiences: tuple[str, ...]
    #: Claims the API function maps to tenant and role (Cognito prefixes custom attributes).
    tenant_claim: str
    role_claim: str
    throttle_rate: float
    throttle_burst: int
    sync_transcription_throttle_rate: float
    domain_name: str | None
    certificate_arn: str | None


@dataclass(frozen=True)
class PlatformConfig:
    names: ResourceNames
    image_tag: str | None
    recording_retention_days: int
    noncurrent_version_days: int
    transcript_retention_days: int | None
    log_retention_days: int
    alarm_email: str | None
    deletion_protection: bool
    batch_size: int
    batch_max_concurrency: int
    oldest_message_alarm_seconds: int
    retraining_schedule: str
    distribution_schedule: str
    advance_schedule: str
    training_image_uri: str | None
    training_instance_type: str
    inference: InferenceConfig
    api: ApiConfig

    @property
    def deploys_functions(self) -> bool:
        """Functions need images in ECR; before the first push the stack deploys everything else."""
        return self.image_tag is not None


_STACK = re.compile(r"^[a-z0-9][a-z0-9-]{0,19}$")
_IMAGE_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_SCHEDULE = re.compile(r"^(rate\(\d+ (minute|minutes|hour|hours|day|days)\)|cron\([^()]+\))$")
_ECR_IMAGE = re.compile(
    r"^\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(\.cn)?/[a-z0-9._/-]+(:[A-Za-z0-9_.-]+|@sha256:[0-9a-f]{64})$"
)
_IMAGE = re.compile(r"^[a-z0-9.-]+(:\d+)?/[a-z0-9._/-]+(:[A-Za-z0-9_.-]+|@sha256:[0-9a-f]{64})$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_MODEL_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")

T = TypeVar("T")


class _Reader:
    """Typed access to the raw string values, each failure naming its key."""

    def __init__(self, raw: Mapping[str, str]) -> None:
        self._raw = raw

    def text(self, key: str) -> str | None:
        value = self._raw.get(key)
        if value is None:
            return None
        return value.strip() or None

    def required(self, key: str, why: str) -> str:
        value = self.text(key)
        if value is None:
            raise InfraConfigError(key, f"required {why}")
        return value

    def parsed(self, key: str, default: T, parse: Callable[[str], T], what: str) -> T:
        value = self.text(key)
        if value is None:
            return default
        try:
            return parse(value)
        except ValueError:
            raise InfraConfigError(key, f"{value!r} is not {what}") from None

    def integer(self, key: str, default: int, low: int, high: int) -> int:
        value = self.parsed(key, default, int, "an integer")
        if not low <= value <= high:
            raise InfraConfigError(key, f"{value} is outside {low}..{high}")
        return value

    def number(self, key: str, default: float, low: float, high: float) -> float:
        value = self.parsed(key, default, float, "a number")
        if not low <= value <= high:
            raise InfraConfigError(key, f"{value} is outside {low}..{high}")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        return self.parsed(key, default, _parse_bool, "true or false")

    def strings(self, key: str) -> tuple[str, ...]:
        return self.parsed(key, (), _parse_string_list, "a list of strings")

    def matching(self, key: str, pattern: re.Pattern[str], what: str) -> str | None:
        value = self.text(key)
        if value is not None and not pattern.match(value):
            raise InfraConfigError(key, f"{value!r} is not {what}")
        return value


def _parse_bool(value: str) -> bool:
    lowered = value.lower()
    if lowered in ("true", "yes", "1"):
        return True
    if lowered in ("false", "no", "0"):
        return False
    raise ValueError(value)


def _parse_string_list(value: str) -> tuple[str, ...]:
    """A YAML list arrives as JSON (``["a","b"]``); a comma-separated string is accepted too."""
    if value.startswith("["):
        try:
            items = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(value) from exc
        if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
            raise ValueError(value)
        return tuple(item.strip() for item in items if item.strip())
    return tuple(item.strip() for item in value.split(",") if item.strip())


def parse_config(stack: str, raw: Mapping[str, str]) -> PlatformConfig:
    """Validate the raw ``edgescribe:*`` values (keys without the namespace) for one stack."""
    if not _STACK.match(stack):
        raise InfraConfigError(
            "<stack name>",
            f"stack name {stack!r} must be 1-20 lowercase letters, digits or '-' (it is part of "
            "every bucket, queue and table name)",
        )
    unknown = sorted(set(raw) - set(KEYS))
    if unknown:
        raise InfraConfigError(unknown[0], f"unknown key; known keys: {', '.join(sorted(KEYS))}")
    read = _Reader(raw)

    log_retention = read.integer("logRetentionDays", 30, 1, 3653)
    if log_retention not in LOG_RETENTION_DAYS:
        raise InfraConfigError(
            "logRetentionDays",
            f"{log_retention} is not a CloudWatch retention; use one of {sorted(LOG_RETENTION_DAYS)}",
        )
    transcript_days = read.text("transcriptRetentionDays")
    return PlatformConfig(
        names=ResourceNames(stack=stack),
        image_tag=read.matching("imageTag", _IMAGE_TAG, "a container image tag"),
        recording_retention_days=read.integer("recordingRetentionDays", 30, 1, 3650),
        noncurrent_version_days=read.integer("noncurrentVersionDays", 30, 1, 3650),
        transcript_retention_days=(
            read.integer("transcriptRetentionDays", 0, 1, 36500) if transcript_days else None
        ),
        log_retention_days=log_retention,
        alarm_email=read.matching("alarmEmail", _EMAIL, "an email address"),
        deletion_protection=read.boolean("deletionProtection", True),
        batch_size=read.integer("batchSize", 4, 1, 10),
        # SQS event sources accept a maximum concurrency of 2..1000.
        batch_max_concurrency=read.integer("batchMaxConcurrency", 10, 2, 1000),
        oldest_message_alarm_seconds=read.integer("oldestMessageAlarmSeconds", 3600, 60, 1_209_600),
        retraining_schedule=_schedule(read, "retrainingSchedule", "rate(1 day)"),
        # Manifests carry an expiry (a frozen feed is detectable); the model-distribution function
        # re-signs them on this schedule, twice a day so one failed run never lets them lapse.
        distribution_schedule=_schedule(read, "distributionSchedule", "rate(12 hours)"),
        advance_schedule=_schedule(read, "advanceSchedule", "rate(1 hour)"),
        training_image_uri=read.matching(
            "trainingImageUri", _ECR_IMAGE, "an ECR image URI (<account>.dkr.ecr.<region>...)"
        ),
        training_instance_type=_instance_type(read, "trainingInstanceType", "ml.g5.xlarge", "ml."),
        inference=_inference(read),
        api=_api(read),
    )


def _schedule(read: _Reader, key: str, default: str) -> str:
    value = read.matching(key, _SCHEDULE, "an EventBridge rate(...) or cron(...) expression")
    return value or default


def _instance_type(read: _Reader, key: str, default: str, prefix: str) -> str:
    value = read.text(key) or default
    if not value.startswith(prefix) or not re.match(r"^[a-z0-9.]+$", value):
        raise InfraConfigError(key, f"{value!r} is not an instance type starting with {prefix!r}")
    return value


def _inference(read: _Reader) -> InferenceConfig:
    mode = read.text("inferenceMode") or "sagemaker"
    if mode not in ("sagemaker", "ecs", "none"):
        raise InfraConfigError("inferenceMode", f"{mode!r} is not one of sagemaker, ecs, none")
    image: str | None = None
    if mode == "sagemaker":
        # SageMaker pulls only from ECR (the AWS-published Triton images live there).
        image = read.matching(
            "tritonImageUri", _ECR_IMAGE, "an ECR image URI (SageMaker pulls only from ECR)"
        )
    elif mode == "ecs":
        image = read.matching("tritonImageUri", _IMAGE, "a container image reference")
    if mode != "none" and image is None:
        raise InfraConfigError(
            "tritonImageUri", f"required when inferenceMode is {mode} (the Triton server image)"
        )
    instance_type = _instance_type(
        read,
        "inferenceInstanceType",
        "ml.g4dn.xlarge" if mode == "sagemaker" else "g4dn.xlarge",
        "ml." if mode == "sagemaker" else "",
    )
    if mode == "ecs" and instance_type.startswith("ml."):
        raise InfraConfigError(
            "inferenceInstanceType", f"{instance_type!r} is a SageMaker type; ECS needs an EC2 type"
        )
    min_capacity = read.integer("inferenceMinCapacity", 1, 1, 100)
    max_capacity = read.integer("inferenceMaxCapacity", 4, 1, 100)
    if max_capacity < min_capacity:
        raise InfraConfigError(
            "inferenceMaxCapacity", f"{max_capacity} is below inferenceMinCapacity {min_capacity}"
        )
    vpc_id = read.matching("vpcId", re.compile(r"^vpc-[0-9a-f]+$"), "a VPC id (vpc-...)")
    subnet_ids = read.strings("subnetIds")
    for subnet in subnet_ids:
        if not re.match(r"^subnet-[0-9a-f]+$", subnet):
            raise InfraConfigError("subnetIds", f"{subnet!r} is not a subnet id (subnet-...)")
    if mode == "ecs":
        if vpc_id is None:
            raise InfraConfigError("vpcId", "required when inferenceMode is ecs")
        if len(subnet_ids) < 2:
            raise InfraConfigError(
                "subnetIds", "ecs mode needs at least two private subnets (the load balancer does)"
            )
    model_name = read.matching("tritonModelName", _MODEL_NAME, "a model name") or "edgescribe-cloud"
    return InferenceConfig(
        mode=cast(InferenceMode, mode),
        triton_image_uri=image,
        model_name=model_name,
        model_version=_model_version(read, mode),
        instance_type=instance_type,
        min_capacity=min_capacity,
        max_capacity=max_capacity,
        invocations_per_instance_target=read.integer(
            "invocationsPerInstanceTarget", 600, 1, 100_000
        ),
        vpc_id=vpc_id,
        subnet_ids=subnet_ids,
    )


def _model_version(read: _Reader, mode: str) -> int:
    if mode != "none" and read.text("tritonModelVersion") is None:
        raise InfraConfigError(
            "tritonModelVersion",
            f"required when inferenceMode is {mode} (the version published to the repository)",
        )
    return read.integer("tritonModelVersion", 0, 0, 1_000_000_000)


def _api(read: _Reader) -> ApiConfig:
    issuer = read.matching("jwtIssuer", re.compile(r"^https://\S+$"), "an https:// issuer URL")
    audiences = read.strings("jwtAudiences")
    if issuer is not None and not audiences:
        raise InfraConfigError("jwtAudiences", "required with jwtIssuer (the token's aud values)")
    if issuer is None and audiences:
        raise InfraConfigError("jwtIssuer", "required with jwtAudiences")
    domain = read.matching(
        "apiDomainName", re.compile(r"^(?=.{1,253}$)([a-z0-9-]+\.)+[a-z]{2,}$"), "a domain name"
    )
    certificate = read.matching(
        "apiCertificateArn",
        re.compile(r"^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/\S+$"),
        "an ACM certificate ARN",
    )
    if (domain is None) != (certificate is None):
        raise InfraConfigError(
            "apiDomainName" if domain is None else "apiCertificateArn",
            "apiDomainName and apiCertificateArn go together",
        )
    rate = read.number("apiThrottleRate", 50.0, 1.0, 10_000.0)
    claim = re.compile(r"^[A-Za-z0-9_:.-]{1,64}$")
    cognito = issuer is None
    return ApiConfig(
        jwt_issuer=issuer,
        jwt_audiences=audiences,
        tenant_claim=read.matching("jwtTenantClaim", claim, "a claim name")
        or ("custom:tenant" if cognito else "tenant"),
        role_claim=read.matching("jwtRoleClaim", claim, "a claim name")
        or ("custom:role" if cognito else "role"),
        throttle_rate=rate,
        throttle_burst=read.integer("apiThrottleBurst", 100, 1, 5000),
        sync_transcription_throttle_rate=min(
            rate, read.number("syncTranscriptionThrottleRate", 10.0, 1.0, 10_000.0)
        ),
        domain_name=domain,
        certificate_arn=certificate,
    )


def load_config() -> PlatformConfig:
    """The current Pulumi stack's settings (reads ``edgescribe:*`` from the engine)."""
    import pulumi
    from pulumi.runtime.config import CONFIG, get_config_env

    prefix = f"{NAMESPACE}:"
    everything: dict[str, object] = {**get_config_env(), **CONFIG.get()}
    raw = {
        key[len(prefix) :]: value if isinstance(value, str) else json.dumps(value)
        for key, value in everything.items()
        if key.startswith(prefix)
    }
    return parse_config(pulumi.get_stack(), raw)
