"""EventBridge Scheduler: the retraining trigger and the rollout health check run on schedules.

EventBridge Scheduler (not a CloudWatch Events rule) because each schedule carries its own retry
policy and dead-letter queue, and invokes through a role that may invoke exactly these functions.
Each run receives ``{"source": "edgescribe.schedule", "schedule": "<name>"}`` as its event
(the distribution function runs on two: ``refresh-manifests`` and ``advance-candidates``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import pulumi
import pulumi_aws as aws

from infra import iam
from infra.components.context import AwsContext
from infra.naming import infra_name


def schedule_event(schedule: str) -> str:
    """The event a scheduled run receives (the handlers tell scheduled runs apart by ``source``)."""
    return json.dumps({"source": "edgescribe.schedule", "schedule": schedule}, sort_keys=True)


class Schedules(pulumi.ComponentResource):
    schedules: Mapping[str, aws.scheduler.Schedule]

    def __init__(
        self,
        name: str,
        context: AwsContext,
        *,
        targets: Mapping[str, tuple[str, pulumi.Output[str]]],
        dead_letter_arn: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """``targets``: schedule name -> (schedule expression, function ARN)."""
        super().__init__("edgescribe:schedules:Schedules", name, None, opts)
        names = context.names
        child = pulumi.ResourceOptions(parent=self)
        role = aws.iam.Role(
            f"{name}-role",
            name=infra_name(names, "scheduler-role"),
            description="EventBridge Scheduler: invoke the scheduled functions, report failures",
            assume_role_policy=context.account_id.apply(
                lambda account: iam.to_json(
                    iam.assume_role_policy("scheduler.amazonaws.com", source_account=account)
                )
            ),
            opts=child,
        )
        # one function may run on several schedules (the distribution function: refresh, advance)
        function_arns = [arn for _, arn in targets.values()]
        policy = aws.iam.RolePolicy(
            f"{name}-policy",
            role=role.id,
            policy=pulumi.Output.all(dead_letter_arn, *function_arns).apply(
                lambda parts: iam.to_json(
                    iam.policy_document(
                        [
                            {
                                "Sid": "InvokeScheduledFunctions",
                                "Effect": "Allow",
                                "Action": ["lambda:InvokeFunction"],
                                "Resource": sorted(set(parts[1:])),
                            },
                            {
                                "Sid": "ReportUndeliverableRuns",
                                "Effect": "Allow",
                                "Action": ["sqs:SendMessage"],
                                "Resource": [parts[0]],
                            },
                        ]
                    )
                )
            ),
            opts=child,
        )
        schedules: dict[str, aws.scheduler.Schedule] = {}
        for schedule_name, (expression, function_arn) in targets.items():
            schedules[schedule_name] = aws.scheduler.Schedule(
                f"{name}-{schedule_name}",
                name=infra_name(names, schedule_name),
                schedule_expression=expression,
                flexible_time_window={"mode": "OFF"},
                target={
                    "arn": function_arn,
                    "role_arn": role.arn,
                    "input": schedule_event(schedule_name),
                    "retry_policy": {
                        "maximum_event_age_in_seconds": 3600,
                        "maximum_retry_attempts": 2,
                    },
                    "dead_letter_config": {"arn": dead_letter_arn},
                },
                opts=pulumi.ResourceOptions(parent=self, depends_on=[policy]),
            )
        self.schedules = schedules
        self.register_outputs({"schedules": list(schedules)})
