"""Tables, schedules, the training role, the signing key, alarms and the dashboard."""

from __future__ import annotations

import json

from edgescribe.settings import TABLE_KEYS, ResourceNames, function_name
from infra import program
from infra.components.schedules import schedule_event
from tests.infra.harness import BASE_CONFIG, DeployedStack, deploy, statements


def test_tables_use_the_shared_key_schemas(sagemaker_stack: DeployedStack) -> None:
    names = ResourceNames(stack=sagemaker_stack.stack)
    for field, keys in TABLE_KEYS.items():
        table = sagemaker_stack.named("aws:dynamodb/table:Table", getattr(names, field))
        assert table.inputs["hashKey"] == keys.partition_key
        assert table.inputs.get("rangeKey") == keys.sort_key
        assert {"name": keys.partition_key, "type": "S"} in table.inputs["attributes"]
        assert table.inputs["billingMode"] == "PAY_PER_REQUEST"
        assert table.inputs["pointInTimeRecovery"] == {"enabled": True}
        if keys.ttl_attribute:
            assert table.inputs["ttl"] == {"attributeName": keys.ttl_attribute, "enabled": True}
        else:
            assert table.inputs.get("ttl") is None
        assert table.inputs["deletionProtectionEnabled"] is True


def test_deletion_protection_can_be_switched_off_for_a_throwaway_stack() -> None:
    stack = deploy({**BASE_CONFIG, "deletionProtection": "false"}, stack="scratch")
    for table in stack.of_type("aws:dynamodb/table:Table"):
        assert table.inputs["deletionProtectionEnabled"] is False
    (pool,) = stack.of_type("aws:cognito/userPool:UserPool")
    assert pool.inputs["deletionProtection"] == "INACTIVE"


def test_schedules_invoke_their_functions_with_retries_and_a_dead_letter_queue() -> None:
    stack = deploy({**BASE_CONFIG, "retrainingSchedule": "cron(0 3 * * ? *)"}, stack="sched")
    dead_letters = stack.named("aws:sqs/queue:Queue", "edgescribe-sched-schedules-dlq")
    scheduler_role = stack.named("aws:iam/role:Role", "edgescribe-sched-scheduler-role")
    schedules = {s.state["name"]: s for s in stack.of_type("aws:scheduler/schedule:Schedule")}
    assert set(schedules) == {f"edgescribe-sched-{name}" for name in program.SCHEDULED_FUNCTIONS}
    expressions = {
        "retraining": "cron(0 3 * * ? *)",
        "refresh-manifests": "rate(12 hours)",
        "advance-candidates": "rate(1 hour)",
    }
    for name, key in program.SCHEDULED_FUNCTIONS.items():
        schedule = schedules[f"edgescribe-sched-{name}"]
        function = stack.named("aws:lambda/function:Function", function_name("sched", key))
        target = schedule.inputs["target"]
        assert schedule.inputs["scheduleExpression"] == expressions[name]
        assert target["arn"] == function.state["arn"]
        assert target["roleArn"] == scheduler_role.state["arn"]
        assert target["deadLetterConfig"] == {"arn": dead_letters.state["arn"]}
        assert target["retryPolicy"]["maximumRetryAttempts"] == 2
        # The model-distribution handler treats an event without "action" as its refresh.
        assert "action" not in json.loads(target["input"])
        assert target["input"] == schedule_event(name)
    (policy,) = stack.referencing("aws:iam/rolePolicy:RolePolicy", "role", scheduler_role.id)
    invoke = next(s for s in statements(policy.policy()) if s["Sid"] == "InvokeScheduledFunctions")
    scheduled = {function_name("sched", key) for key in program.SCHEDULED_FUNCTIONS.values()}
    assert sorted(invoke["Resource"]) == sorted(
        stack.named("aws:lambda/function:Function", name).state["arn"] for name in scheduled
    )


def test_the_distribution_function_reads_each_of_its_schedules_as_the_right_action() -> None:
    from functions.model_distribution import (
        ADVANCE_SCHEDULE,
        AdvanceEvent,
        RefreshEvent,
        parse_event,
    )

    assert program.SCHEDULED_FUNCTIONS[ADVANCE_SCHEDULE] == "model-distribution"
    for name, key in program.SCHEDULED_FUNCTIONS.items():
        if key == "model-distribution":
            expected = AdvanceEvent if name == ADVANCE_SCHEDULE else RefreshEvent
            assert isinstance(parse_event(json.loads(schedule_event(name))), expected)


def test_only_the_retraining_trigger_may_pass_the_training_role(
    sagemaker_stack: DeployedStack,
) -> None:
    stack = sagemaker_stack.stack
    training_role = sagemaker_stack.named("aws:iam/role:Role", f"edgescribe-{stack}-training-role")
    passers = set()
    for policy in sagemaker_stack.of_type("aws:iam/rolePolicy:RolePolicy"):
        for statement in statements(policy.policy()):
            if "iam:PassRole" in statement["Action"]:
                assert statement["Resource"] == [training_role.state["arn"]]
                assert statement["Condition"] == {
                    "StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}
                }
                passers.add(policy.inputs["role"])
    assert passers == {f"{function_name(stack, 'retraining-trigger')}-role"}
    (policy,) = sagemaker_stack.referencing(
        "aws:iam/rolePolicy:RolePolicy", "role", training_role.id
    )
    writes = [s for s in statements(policy.policy()) if "s3:PutObject" in s["Action"]]
    names = ResourceNames(stack=stack)
    assert [s["Resource"] for s in writes] == [[f"arn:aws:s3:::{names.models_bucket}/training/*"]]


def test_only_model_distribution_may_read_the_signing_key(sagemaker_stack: DeployedStack) -> None:
    (secret,) = sagemaker_stack.of_type("aws:secretsmanager/secret:Secret")
    readers = {
        policy.inputs["role"]
        for policy in sagemaker_stack.of_type("aws:iam/rolePolicy:RolePolicy")
        for statement in statements(policy.policy())
        if "secretsmanager:GetSecretValue" in statement["Action"]
        and statement["Resource"] == [secret.state["arn"]]
    }
    assert readers == {f"{function_name(sagemaker_stack.stack, 'model-distribution')}-role"}


def test_alarms_reach_on_call_through_the_encrypted_topic() -> None:
    stack = deploy({**BASE_CONFIG, "alarmEmail": "oncall@example.com"}, stack="oncall")
    (topic,) = stack.of_type("aws:sns/topic:Topic")
    (subscription,) = stack.of_type("aws:sns/topicSubscription:TopicSubscription")
    assert subscription.inputs["endpoint"] == "oncall@example.com"
    assert subscription.inputs["topic"] == topic.state["arn"]
    alarms = stack.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
    assert alarms
    for alarm in alarms:
        assert alarm.inputs["alarmActions"] == [topic.state["arn"]]
        assert alarm.inputs["treatMissingData"] == "notBreaching"


def test_dashboard_shows_every_function_queue_and_the_endpoint(
    sagemaker_stack: DeployedStack,
) -> None:
    names = ResourceNames(stack=sagemaker_stack.stack)
    (dashboard,) = sagemaker_stack.of_type("aws:cloudwatch/dashboard:Dashboard")
    body = json.loads(dashboard.inputs["dashboardBody"])
    metrics = [m for w in body["widgets"] for m in w["properties"]["metrics"]]
    shown = {value for metric in metrics for value in metric}
    for key in ("batch-transcription", "api", "retraining-trigger", "model-distribution"):
        assert function_name(names.stack, key) in shown
    assert {names.transcription_queue, names.transcription_dlq} <= shown
    assert f"edgescribe-{names.stack}-triton" in shown
