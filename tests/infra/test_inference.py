"""Triton hosting: SageMaker endpoint or ECS service behind an internal ALB, picked by config."""

from __future__ import annotations

import json

from edgescribe.settings import ResourceNames, function_name
from infra.iam import ecr_repository_arn
from models.runtime.storage_layout import triton_repository_prefix
from tests.infra.harness import BASE_CONFIG, TRITON_IMAGE, DeployedStack, deploy, statements


def test_sagemaker_endpoint_serves_the_repository_in_the_models_bucket() -> None:
    stack = deploy(
        {
            **BASE_CONFIG,
            "inferenceInstanceType": "ml.g5.2xlarge",
            "tritonModelVersion": "7",
            "inferenceMinCapacity": "2",
            "inferenceMaxCapacity": "6",
            "invocationsPerInstanceTarget": "900",
        },
        stack="gpu",
    )
    names = ResourceNames(stack="gpu")
    (model,) = stack.of_type("aws:sagemaker/model:Model")
    container = model.inputs["primaryContainer"]
    assert container["image"] == TRITON_IMAGE
    (source,) = container["modelDataSource"]["s3DataSources"]
    prefix = triton_repository_prefix("edgescribe-cloud")
    assert source == {
        "s3Uri": f"s3://{names.models_bucket}/{prefix}/",
        "s3DataType": "S3Prefix",
        "compressionType": "None",
    }
    assert container["environment"]["SAGEMAKER_TRITON_DEFAULT_MODEL_NAME"] == "edgescribe-cloud"
    assert model.name.endswith("-v7"), "a new model version must replace the SageMaker model"

    (config,) = stack.of_type("aws:sagemaker/endpointConfiguration:EndpointConfiguration")
    (variant,) = config.inputs["productionVariants"]
    assert variant["instanceType"] == "ml.g5.2xlarge"
    assert variant["initialInstanceCount"] == 2
    (endpoint,) = stack.of_type("aws:sagemaker/endpoint:Endpoint")
    assert endpoint.state["name"] == "edgescribe-gpu-triton"
    assert stack.outputs["inferenceEndpointName"] == "edgescribe-gpu-triton"

    (target,) = stack.of_type("aws:appautoscaling/target:Target")
    assert target.inputs["resourceId"] == "endpoint/edgescribe-gpu-triton/variant/AllTraffic"
    assert (target.inputs["minCapacity"], target.inputs["maxCapacity"]) == (2, 6)
    (policy,) = stack.of_type("aws:appautoscaling/policy:Policy")
    tracking = policy.inputs["targetTrackingScalingPolicyConfiguration"]
    assert tracking["targetValue"] == 900
    assert tracking["predefinedMetricSpecification"] == {
        "predefinedMetricType": "SageMakerVariantInvocationsPerInstance"
    }


def test_sagemaker_role_reads_only_the_model_repository(sagemaker_stack: DeployedStack) -> None:
    names = ResourceNames(stack=sagemaker_stack.stack)
    role = sagemaker_stack.named("aws:iam/role:Role", f"edgescribe-{names.stack}-triton-role")
    (policy,) = sagemaker_stack.referencing("aws:iam/rolePolicy:RolePolicy", "role", role.id)
    by_sid = {s["Sid"]: s for s in statements(policy.policy())}
    prefix = triton_repository_prefix("edgescribe-cloud")
    assert by_sid["ReadModelRepository"]["Resource"] == [
        f"arn:aws:s3:::{names.models_bucket}/{prefix}/*"
    ]
    assert by_sid["ListModelRepository"]["Condition"] == {
        "StringLike": {"s3:prefix": [f"{prefix}/*", prefix]}
    }
    assert by_sid["PullTritonImage"]["Resource"] == [ecr_repository_arn(TRITON_IMAGE, "aws")]
    trust = json.loads(role.inputs["assumeRolePolicy"])
    (statement,) = trust["Statement"]
    assert statement["Principal"] == {"Service": "sagemaker.amazonaws.com"}
    assert statement["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"}}


def test_only_transcribing_functions_may_invoke_the_endpoint(
    sagemaker_stack: DeployedStack,
) -> None:
    (endpoint,) = sagemaker_stack.of_type("aws:sagemaker/endpoint:Endpoint")
    roles = {r.state["arn"]: r for r in sagemaker_stack.of_type("aws:iam/role:Role")}
    invokers = set()
    for function in sagemaker_stack.of_type("aws:lambda/function:Function"):
        role = roles[function.inputs["role"]]
        for policy in sagemaker_stack.referencing("aws:iam/rolePolicy:RolePolicy", "role", role.id):
            for statement in statements(policy.policy()):
                if "sagemaker:InvokeEndpoint" in statement["Action"]:
                    assert statement["Resource"] == [endpoint.state["arn"]]
                    invokers.add(function.state["name"])
    stack = sagemaker_stack.stack
    assert invokers == {
        function_name(stack, "batch-transcription"),
        function_name(stack, "api"),
    }


def test_ecs_mode_runs_triton_behind_an_internal_load_balancer(ecs_stack: DeployedStack) -> None:
    names = ResourceNames(stack=ecs_stack.stack)
    assert ecs_stack.of_type("aws:sagemaker/endpoint:Endpoint") == []
    (balancer,) = ecs_stack.of_type("aws:lb/loadBalancer:LoadBalancer")
    assert balancer.inputs["internal"] is True
    assert balancer.inputs["subnets"] == ["subnet-0aaa1111", "subnet-0bbb2222"]
    (group,) = ecs_stack.of_type("aws:lb/targetGroup:TargetGroup")
    assert group.inputs["healthCheck"]["path"] == "/v2/health/ready"
    assert group.inputs["port"] == 8000
    (task,) = ecs_stack.of_type("aws:ecs/taskDefinition:TaskDefinition")
    (container,) = json.loads(task.inputs["containerDefinitions"])
    assert container["resourceRequirements"] == [{"type": "GPU", "value": "1"}]
    repository = f"s3://{names.models_bucket}/{triton_repository_prefix('edgescribe-cloud')}/"
    assert f"--model-repository={repository}" in container["command"]
    assert "--model-control-mode=poll" in container["command"]
    (service,) = ecs_stack.of_type("aws:ecs/service:Service")
    assert service.inputs["networkConfiguration"]["assignPublicIp"] is False
    assert ecs_stack.outputs["inferenceUrl"].startswith("http://internal-")


def test_ecs_mode_places_only_inference_callers_in_the_vpc(ecs_stack: DeployedStack) -> None:
    clients = ecs_stack.named(
        "aws:ec2/securityGroup:SecurityGroup", f"edgescribe-{ecs_stack.stack}-triton-clients"
    )
    placed = {
        f.state["name"]: f.inputs.get("vpcConfig")
        for f in ecs_stack.of_type("aws:lambda/function:Function")
    }
    stack = ecs_stack.stack
    for key in ("batch-transcription", "api"):
        assert placed[function_name(stack, key)] == {
            "subnetIds": ["subnet-0aaa1111", "subnet-0bbb2222"],
            "securityGroupIds": [clients.id],
        }
    for key in ("retraining-trigger", "model-distribution"):
        assert placed[function_name(stack, key)] is None
    balancer_group = ecs_stack.named(
        "aws:ec2/securityGroup:SecurityGroup", f"edgescribe-{stack}-triton-lb"
    )
    (ingress,) = balancer_group.inputs["ingress"]
    assert ingress["securityGroups"] == [clients.id]


def test_no_gpu_mode_deploys_no_inference_service(onnxruntime_stack: DeployedStack) -> None:
    for typ in (
        "aws:sagemaker/endpoint:Endpoint",
        "aws:ecs/service:Service",
        "aws:lb/loadBalancer:LoadBalancer",
    ):
        assert onnxruntime_stack.of_type(typ) == []
    assert onnxruntime_stack.outputs["inferenceMode"] == "none"
