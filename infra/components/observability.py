"""Alarms go to one encrypted SNS topic; one dashboard shows the whole pipeline.

Every alarm in the platform is built with ``metric_alarm`` so they share the same shape: missing data
is "not breaching" (an idle stack is healthy), the topic is both the alarm and the OK action (on-call
sees recoveries), and the alarm name says which stack and part it belongs to.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.components.context import AwsContext
from infra.naming import infra_name


class AlarmTopic(pulumi.ComponentResource):
    topic: aws.sns.Topic
    arn: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        context: AwsContext,
        key_arn: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("edgescribe:observability:AlarmTopic", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.topic = aws.sns.Topic(
            f"{name}-topic",
            name=infra_name(context.names, "alarms"),
            kms_master_key_id=key_arn,
            opts=child,
        )
        email = context.config.alarm_email
        if email is not None:
            aws.sns.TopicSubscription(
                f"{name}-email",
                topic=self.topic.arn,
                protocol="email",
                endpoint=email,
                opts=child,
            )
        self.arn = self.topic.arn
        self.register_outputs({"arn": self.arn})


@dataclass(frozen=True)
class AlarmSpec:
    """One CloudWatch alarm: ``statistic(metric) <comparison> threshold`` over ``periods``."""

    suffix: str
    description: str
    namespace: str
    metric: str
    dimensions: Mapping[str, pulumi.Input[str]]
    threshold: float
    statistic: str = "Sum"
    comparison: str = "GreaterThanOrEqualToThreshold"
    period_seconds: int = 300
    periods: int = 1


def metric_alarm(
    name: str,
    context: AwsContext,
    spec: AlarmSpec,
    topic_arn: pulumi.Input[str],
    parent: pulumi.Resource,
) -> aws.cloudwatch.MetricAlarm:
    percentile = spec.statistic.startswith("p")
    return aws.cloudwatch.MetricAlarm(
        name,
        name=infra_name(context.names, spec.suffix),
        alarm_description=spec.description,
        namespace=spec.namespace,
        metric_name=spec.metric,
        dimensions=dict(spec.dimensions),
        statistic=None if percentile else spec.statistic,
        extended_statistic=spec.statistic if percentile else None,
        comparison_operator=spec.comparison,
        threshold=spec.threshold,
        period=spec.period_seconds,
        evaluation_periods=spec.periods,
        datapoints_to_alarm=spec.periods,
        treat_missing_data="notBreaching",
        alarm_actions=[topic_arn],
        ok_actions=[topic_arn],
        opts=pulumi.ResourceOptions(parent=parent),
    )


@dataclass(frozen=True)
class DashboardInputs:
    """Resolved names the dashboard's widgets point at."""

    region: str
    functions: Sequence[str]
    queue: str
    dead_letter_queue: str
    api_id: str | None
    endpoint: str | None


def dashboard_body(inputs: DashboardInputs) -> dict[str, Any]:
    """Widgets for the pipeline: functions, queues, API, inference (pure, for the tests)."""

    def widget(title: str, metrics: list[list[Any]], stat: str = "Sum") -> dict[str, Any]:
        return {
            "type": "metric",
            "width": 12,
            "height": 6,
            "properties": {
                "title": title,
                "region": inputs.region,
                "stat": stat,
                "period": 300,
                "view": "timeSeries",
                "metrics": metrics,
            },
        }

    def per_function(metric: str) -> list[list[Any]]:
        return [["AWS/Lambda", metric, "FunctionName", name] for name in inputs.functions]

    widgets = [
        widget("Function invocations", per_function("Invocations")),
        widget("Function errors", per_function("Errors")),
        widget("Function duration p95 (ms)", per_function("Duration"), stat="p95"),
        widget("Function throttles", per_function("Throttles")),
        widget(
            "Transcription queue",
            [
                ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", inputs.queue],
                [
                    "AWS/SQS",
                    "ApproximateNumberOfMessagesVisible",
                    "QueueName",
                    inputs.dead_letter_queue,
                ],
            ],
            stat="Maximum",
        ),
        widget(
            "Oldest waiting recording (s)",
            [["AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", inputs.queue]],
            stat="Maximum",
        ),
    ]
    if inputs.api_id is not None:
        widgets += [
            widget(
                "API requests and errors",
                [
                    ["AWS/ApiGateway", "Count", "ApiId", inputs.api_id],
                    ["AWS/ApiGateway", "4xx", "ApiId", inputs.api_id],
                    ["AWS/ApiGateway", "5xx", "ApiId", inputs.api_id],
                ],
            ),
            widget(
                "API latency p95 (ms)",
                [["AWS/ApiGateway", "Latency", "ApiId", inputs.api_id]],
                stat="p95",
            ),
        ]
    if inputs.endpoint is not None:
        dimensions = ["EndpointName", inputs.endpoint, "VariantName", "AllTraffic"]
        widgets += [
            widget(
                "Inference invocations per instance",
                [["AWS/SageMaker", "InvocationsPerInstance", *dimensions]],
            ),
            widget(
                "Inference model latency p95 (us)",
                [["AWS/SageMaker", "ModelLatency", *dimensions]],
                stat="p95",
            ),
        ]
    return {"widgets": widgets}


class PlatformDashboard(pulumi.ComponentResource):
    dashboard: aws.cloudwatch.Dashboard

    def __init__(
        self,
        name: str,
        context: AwsContext,
        *,
        functions: Sequence[pulumi.Input[str]],
        queue: pulumi.Input[str],
        dead_letter_queue: pulumi.Input[str],
        api_id: pulumi.Input[str] | None,
        endpoint: pulumi.Input[str] | None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("edgescribe:observability:PlatformDashboard", name, None, opts)
        body = pulumi.Output.all(
            context.region,
            pulumi.Output.all(*functions),
            queue,
            dead_letter_queue,
            api_id,
            endpoint,
        ).apply(
            lambda parts: json.dumps(
                dashboard_body(
                    DashboardInputs(
                        region=parts[0],
                        functions=list(parts[1]),
                        queue=parts[2],
                        dead_letter_queue=parts[3],
                        api_id=parts[4],
                        endpoint=parts[5],
                    )
                ),
                sort_keys=True,
            )
        )
        self.dashboard = aws.cloudwatch.Dashboard(
            f"{name}-dashboard",
            dashboard_name=infra_name(context.names, "pipeline"),
            dashboard_body=body,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"dashboard": self.dashboard.dashboard_name})
