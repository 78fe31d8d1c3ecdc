"""The four functions: image, handler, size, environment, triggers, logs and alarms."""

from __future__ import annotations

import json
from typing import Any

import pytest

from edgescribe.settings import FUNCTIONS, ResourceNames, function_name
from functions.distribution.signing import SIGNING_KEY_SECRET_VARIABLE
from functions.inference.selection import InferenceSettings
from infra import program
from infra.catalog import FUNCTIONS as FUNCTION_SPECS
from infra.catalog import function_spec
from tests.infra.harness import ACCOUNT, BASE_CONFIG, REGION, DeployedStack, deploy

FUNCTION = "aws:lambda/function:Function"


def _function(stack: DeployedStack, key: str) -> dict[str, Any]:
    resource = stack.named(FUNCTION, function_name(stack.stack, key))
    return resource.inputs


def _environment(stack: DeployedStack, key: str) -> dict[str, str]:
    variables: dict[str, str] = _function(stack, key)["environment"]["variables"]
    return variables


def test_every_catalogued_function_is_deployed_under_its_settings_name(
    sagemaker_stack: DeployedStack,
) -> None:
    deployed = {f.state["name"] for f in sagemaker_stack.of_type(FUNCTION)}
    assert deployed == {function_name(sagemaker_stack.stack, key) for key in FUNCTIONS}
    assert {spec.key for spec in FUNCTION_SPECS} == set(FUNCTIONS)


def test_each_function_runs_its_handler_from_its_image_at_the_configured_tag(
    sagemaker_stack: DeployedStack,
) -> None:
    repository = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/edgescribe-{sagemaker_stack.stack}"
    for spec in FUNCTION_SPECS:
        inputs = _function(sagemaker_stack, spec.key)
        assert inputs["packageType"] == "Image"
        assert inputs["imageUri"] == f"{repository}-{spec.image}:{BASE_CONFIG['imageTag']}"
        assert inputs["imageConfig"] == {"commands": [spec.handler]}
        assert inputs["memorySize"] == spec.memory_mb
        assert inputs["timeout"] == spec.timeout_seconds
        assert inputs["architectures"] == ["x86_64"]


def test_api_function_answers_before_api_gateway_gives_up() -> None:
    # HTTP APIs wait 30 s for an integration; a longer function timeout would turn our own
    # clear error into a gateway 503.
    assert function_spec("api").timeout_seconds < 30


def test_every_function_reads_its_resource_names_from_the_settings_module(
    any_stack: DeployedStack,
) -> None:
    expected = ResourceNames(stack=any_stack.stack).as_environment()
    for key in FUNCTIONS:
        environment = _environment(any_stack, key)
        assert {name: environment.get(name) for name in expected} == expected


def test_inference_environment_is_understood_by_the_functions_backend_selection(
    sagemaker_stack: DeployedStack, ecs_stack: DeployedStack, onnxruntime_stack: DeployedStack
) -> None:
    on_sagemaker = InferenceSettings.from_environment(_environment(sagemaker_stack, "api"))
    assert on_sagemaker.mode == "sagemaker"
    assert on_sagemaker.sagemaker_endpoint == f"edgescribe-{sagemaker_stack.stack}-triton"
    assert on_sagemaker.triton_model == "edgescribe-cloud"
    assert on_sagemaker.triton_model_version == int(BASE_CONFIG["tritonModelVersion"])

    on_ecs = InferenceSettings.from_environment(_environment(ecs_stack, "batch-transcription"))
    assert on_ecs.mode == "triton-http"
    assert on_ecs.triton_url is not None
    assert on_ecs.triton_url.endswith(".elb.amazonaws.com:80")

    on_cpu = InferenceSettings.from_environment(
        _environment(onnxruntime_stack, "batch-transcription")
    )
    assert on_cpu.mode == "onnxruntime"
    # onnxruntime threads follow the vCPUs the memory size buys (4 GB: two whole vCPUs).
    assert function_spec("batch-transcription").memory_mb == 4096
    assert on_cpu.intra_op_threads == 2


def test_only_transcribing_functions_are_told_about_inference(
    sagemaker_stack: DeployedStack,
) -> None:
    for spec in FUNCTION_SPECS:
        has_backend = "EDGESCRIBE_INFERENCE" in _environment(sagemaker_stack, spec.key)
        assert has_backend == spec.uses_inference, spec.key


def test_model_distribution_finds_its_signing_key_secret(sagemaker_stack: DeployedStack) -> None:
    (secret,) = sagemaker_stack.of_type("aws:secretsmanager/secret:Secret")
    environment = _environment(sagemaker_stack, "model-distribution")
    assert program.SIGNING_KEY_SECRET_VARIABLE == SIGNING_KEY_SECRET_VARIABLE
    assert environment[SIGNING_KEY_SECRET_VARIABLE] == secret.state["arn"]


def test_api_function_trusts_the_gateway_authorizer_and_its_claims(
    sagemaker_stack: DeployedStack,
) -> None:
    environment = _environment(sagemaker_stack, "api")
    assert environment["EDGESCRIBE_AUTH_MODE"] == "gateway"
    assert environment["EDGESCRIBE_JWT_TENANT_CLAIM"] == "custom:tenant"
    issued = deploy(
        {**BASE_CONFIG, "jwtIssuer": "https://login.example.com/", "jwtAudiences": "edgescribe"},
        stack="idp",
    )
    assert _environment(issued, "api")["EDGESCRIBE_JWT_TENANT_CLAIM"] == "tenant"


def test_retraining_trigger_knows_where_training_jobs_run_and_write(
    sagemaker_stack: DeployedStack,
) -> None:
    names = ResourceNames(stack=sagemaker_stack.stack)
    environment = _environment(sagemaker_stack, "retraining-trigger")
    role = sagemaker_stack.named("aws:iam/role:Role", f"edgescribe-{names.stack}-training-role")
    assert environment["EDGESCRIBE_TRAINING_ROLE_ARN"] == role.state["arn"]
    assert environment["EDGESCRIBE_TRAINING_OUTPUT_URI"] == f"s3://{names.models_bucket}/training/"
    assert environment["EDGESCRIBE_TRAINING_INSTANCE_TYPE"] == "ml.g5.xlarge"


def test_batch_function_consumes_the_queue_reporting_partial_batch_failures() -> None:
    stack = deploy({**BASE_CONFIG, "batchSize": "7", "batchMaxConcurrency": "25"}, stack="batch")
    names = ResourceNames(stack="batch")
    queue = stack.named("aws:sqs/queue:Queue", names.transcription_queue)
    batch = stack.named(FUNCTION, function_name("batch", "batch-transcription"))
    (mapping,) = stack.of_type("aws:lambda/eventSourceMapping:EventSourceMapping")
    assert mapping.inputs["eventSourceArn"] == queue.state["arn"]
    assert mapping.inputs["functionName"] == batch.state["arn"]
    assert mapping.inputs["functionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping.inputs["batchSize"] == 7
    assert mapping.inputs["scalingConfig"] == {"maximumConcurrency": 25}


def test_scheduled_functions_send_failed_runs_to_the_schedules_dead_letter_queue(
    sagemaker_stack: DeployedStack,
) -> None:
    dead_letters = sagemaker_stack.named(
        "aws:sqs/queue:Queue", f"edgescribe-{sagemaker_stack.stack}-schedules-dlq"
    )
    configs = sagemaker_stack.of_type(
        "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig"
    )
    assert {c.inputs["functionName"] for c in configs} == {
        function_name(sagemaker_stack.stack, key) for key in program.SCHEDULED_FUNCTIONS.values()
    }
    for config in configs:
        assert (
            config.inputs["destinationConfig"]["onFailure"]["destination"]
            == (dead_letters.state["arn"])
        )


def test_each_function_logs_to_its_own_group_as_json(sagemaker_stack: DeployedStack) -> None:
    for key in FUNCTIONS:
        name = function_name(sagemaker_stack.stack, key)
        group = sagemaker_stack.named("aws:cloudwatch/logGroup:LogGroup", f"/aws/lambda/{name}")
        assert group.inputs["retentionInDays"] == 30
        logging_config = _function(sagemaker_stack, key)["loggingConfig"]
        assert logging_config["logGroup"] == group.state["name"]
        assert logging_config["logFormat"] == "JSON"


def test_each_function_has_a_role_of_its_own(sagemaker_stack: DeployedStack) -> None:
    roles = [_function(sagemaker_stack, key)["role"] for key in FUNCTIONS]
    assert len(set(roles)) == len(roles)
    for role_arn in roles:
        role = next(
            r for r in sagemaker_stack.of_type("aws:iam/role:Role") if r.state["arn"] == role_arn
        )
        trust = json.loads(role.inputs["assumeRolePolicy"])
        assert trust["Statement"] == [
            {
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ]


@pytest.mark.parametrize("key", FUNCTIONS)
def test_each_function_alarms_on_errors_throttles_and_near_timeouts(
    sagemaker_stack: DeployedStack, key: str
) -> None:
    name = function_name(sagemaker_stack.stack, key)
    (topic,) = sagemaker_stack.of_type("aws:sns/topic:Topic")
    alarms = {
        a.inputs["metricName"]: a
        for a in sagemaker_stack.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
        if a.inputs["dimensions"] == {"FunctionName": name}
    }
    assert set(alarms) == {"Errors", "Throttles", "Duration"}
    for alarm in alarms.values():
        assert alarm.inputs["alarmActions"] == [topic.state["arn"]]
    timeout_ms = function_spec(key).timeout_seconds * 1000
    assert alarms["Duration"].inputs["threshold"] < timeout_ms
    assert alarms["Duration"].inputs["extendedStatistic"] == "p95"


def test_first_deployment_without_images_creates_no_functions_and_says_why(
    bootstrap_stack: DeployedStack,
) -> None:
    assert bootstrap_stack.of_type(FUNCTION) == []
    assert bootstrap_stack.of_type("aws:apigatewayv2/api:Api") == []
    assert len(bootstrap_stack.of_type("aws:ecr/repository:Repository")) == 2
    assert len(bootstrap_stack.of_type("aws:s3/bucket:Bucket")) == 4
    assert any("edgescribe:imageTag" in message for message in bootstrap_stack.warnings)
    assert "apiUrl" not in bootstrap_stack.outputs
