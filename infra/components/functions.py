"""One Lambda function with everything it owns: role, policy, log group, alarms.

Per function, nothing shared:

* its own IAM role, whose one inline policy is generated from its row of ``infra.access`` (so the
  policy says exactly what the table says, and the tests check the table's effect);
* its own log group (retention, KMS), created before the function so Lambda never creates an
  unencrypted, never-expiring one, and the role needs no ``logs:CreateLogGroup``;
* its image: ``<repository>:<imageTag>`` with the handler as the image command (one image serves
  several functions);
* alarms on errors, throttles and p95 duration near the timeout (a function about to time out is
  an outage in waiting).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from edgescribe.settings import function_name
from infra import access, iam
from infra.catalog import FunctionSpec
from infra.components.context import AwsContext
from infra.components.observability import AlarmSpec, metric_alarm

#: Metric namespace of the functions' powertools metrics.
METRICS_NAMESPACE = "EdgeScribe"
#: Lambda gives one vCPU per 1 769 MB of memory.
MB_PER_VCPU = 1769
#: Alarm when p95 duration passes this share of the timeout.
DURATION_ALARM_SHARE = 0.8


@dataclass(frozen=True)
class PlatformArns:
    """The ARNs a function's policy may name (outputs of other components)."""

    buckets: pulumi.Output[dict[str, str]]
    tables: pulumi.Output[dict[str, str]]
    queues: pulumi.Output[dict[str, str]]
    data_key: pulumi.Output[str]
    inference_endpoint: pulumi.Output[str] | None = None
    training_role: pulumi.Output[str] | None = None
    training_jobs: pulumi.Output[str] | None = None
    signing_key_secret: pulumi.Output[str] | None = None
    vpc_network: pulumi.Output[list[str]] | None = None


@dataclass(frozen=True)
class VpcPlacement:
    """ECS mode: functions that call inference run in the VPC to reach the internal load balancer."""

    subnet_ids: Sequence[str]
    security_group_id: pulumi.Output[str]


def intra_op_threads(memory_mb: int) -> int:
    """onnxruntime threads that match the vCPUs Lambda allots to this memory size."""
    return max(1, math.floor(memory_mb / MB_PER_VCPU))


class PlatformFunction(pulumi.ComponentResource):
    function: aws.lambda_.Function
    role: aws.iam.Role
    policy: aws.iam.RolePolicy
    log_group: aws.cloudwatch.LogGroup

    def __init__(
        self,
        name: str,
        context: AwsContext,
        *,
        spec: FunctionSpec,
        image_uri: pulumi.Input[str],
        arns: PlatformArns,
        environment: Mapping[str, pulumi.Input[str]],
        topic_arn: pulumi.Input[str],
        vpc: VpcPlacement | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("edgescribe:functions:PlatformFunction", name, None, opts)
        self._logical = name
        config = context.config
        names = config.names
        physical_name = function_name(names.stack, spec.key)
        child = pulumi.ResourceOptions(parent=self)
        grants = access.FUNCTION_ACCESS[spec.key]
        placed_in_vpc = vpc is not None and spec.uses_inference

        self.log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=f"/aws/lambda/{physical_name}",
            retention_in_days=config.log_retention_days,
            kms_key_id=arns.data_key,
            opts=child,
        )
        self.role = aws.iam.Role(
            f"{name}-role",
            name=f"{physical_name}-role",
            description=f"Execution role of {physical_name} (generated from infra/access.py)",
            assume_role_policy=iam.to_json(iam.assume_role_policy("lambda.amazonaws.com")),
            opts=child,
        )
        policy_json = pulumi.Output.all(
            arns.buckets,
            arns.tables,
            arns.queues,
            arns.data_key,
            self.log_group.arn,
            arns.inference_endpoint if spec.uses_inference else None,
            arns.training_role,
            arns.training_jobs,
            arns.signing_key_secret,
            arns.vpc_network if placed_in_vpc else None,
        ).apply(
            lambda parts: iam.to_json(
                iam.policy_document(
                    access.function_statements(
                        grants,
                        access.ResolvedArns(
                            buckets=parts[0],
                            tables=parts[1],
                            queues=parts[2],
                            data_key=parts[3],
                            log_group=parts[4],
                            inference_endpoint=parts[5],
                            training_role=parts[6],
                            training_jobs=parts[7],
                            signing_key_secret=parts[8],
                            vpc_network=tuple(parts[9] or ()),
                        ),
                        invokes_inference=spec.uses_inference,
                    )
                )
            )
        )
        self.policy = policy = aws.iam.RolePolicy(
            f"{name}-policy",
            name=f"{physical_name}-access",
            role=self.role.id,
            policy=policy_json,
            opts=child,
        )

        variables: dict[str, pulumi.Input[str]] = {
            **names.as_environment(),
            "POWERTOOLS_SERVICE_NAME": spec.key,
            "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
            **environment,
        }
        if spec.image == "transcriber":
            variables["EDGESCRIBE_INTRA_OP_THREADS"] = str(intra_op_threads(spec.memory_mb))

        self.function = aws.lambda_.Function(
            f"{name}-function",
            name=physical_name,
            description=spec.description,
            package_type="Image",
            image_uri=image_uri,
            image_config={"commands": [spec.handler]},
            architectures=["x86_64"],
            role=self.role.arn,
            memory_size=spec.memory_mb,
            timeout=spec.timeout_seconds,
            ephemeral_storage={"size": spec.ephemeral_storage_mb},
            environment={"variables": variables},
            kms_key_arn=arns.data_key,
            logging_config={
                "log_format": "JSON",
                "log_group": self.log_group.name,
                "application_log_level": "INFO",
                "system_log_level": "WARN",
            },
            vpc_config=(
                {"subnet_ids": list(vpc.subnet_ids), "security_group_ids": [vpc.security_group_id]}
                if placed_in_vpc and vpc is not None
                else None
            ),
            # The role must be able to write logs and read its queue before the first invocation.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[policy, self.log_group]),
        )
        self._alarms(name, context, spec, physical_name, topic_arn)
        self.register_outputs(
            {"name": self.function.name, "arn": self.function.arn, "role": self.role.arn}
        )

    def consume_queue(
        self, queue_arn: pulumi.Input[str], *, batch_size: int, max_concurrency: int
    ) -> aws.lambda_.EventSourceMapping:
        """Poll an SQS queue the way the batch handler expects: partial batch failures reported
        per message (``ReportBatchItemFailures``), so one bad recording never fails its neighbours."""
        return aws.lambda_.EventSourceMapping(
            f"{self._logical}-queue-trigger",
            event_source_arn=queue_arn,
            function_name=self.function.arn,
            batch_size=batch_size,
            maximum_batching_window_in_seconds=5,
            function_response_types=["ReportBatchItemFailures"],
            scaling_config={"maximum_concurrency": max_concurrency},
            # Lambda checks the role's SQS permissions when the mapping is created.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.policy]),
        )

    def report_failed_runs(self, dead_letter_arn: pulumi.Input[str]) -> None:
        """Asynchronous (scheduled) runs: two retries, then the event goes to a dead-letter queue."""
        aws.lambda_.FunctionEventInvokeConfig(
            f"{self._logical}-async-failures",
            function_name=self.function.name,
            maximum_retry_attempts=2,
            maximum_event_age_in_seconds=3600,
            destination_config={"on_failure": {"destination": dead_letter_arn}},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.policy]),
        )

    def _alarms(
        self,
        name: str,
        context: AwsContext,
        spec: FunctionSpec,
        physical_name: str,
        topic_arn: pulumi.Input[str],
    ) -> None:
        dimensions = {"FunctionName": physical_name}
        for suffix, metric, description in (
            ("errors", "Errors", "invocations failed"),
            ("throttles", "Throttles", "invocations were throttled"),
        ):
            metric_alarm(
                f"{name}-{suffix}-alarm",
                context,
                AlarmSpec(
                    suffix=f"{spec.key}-{suffix}",
                    description=f"{physical_name}: {description}",
                    namespace="AWS/Lambda",
                    metric=metric,
                    dimensions=dimensions,
                    threshold=1,
                ),
                topic_arn,
                self,
            )
        metric_alarm(
            f"{name}-duration-alarm",
            context,
            AlarmSpec(
                suffix=f"{spec.key}-near-timeout",
                description=(
                    f"{physical_name}: p95 duration above {int(DURATION_ALARM_SHARE * 100)}% "
                    "of the timeout"
                ),
                namespace="AWS/Lambda",
                metric="Duration",
                dimensions=dimensions,
                threshold=DURATION_ALARM_SHARE * spec.timeout_seconds * 1000,
                statistic="p95",
                comparison="GreaterThanThreshold",
                periods=3,
            ),
            topic_arn,
            self,
        )
