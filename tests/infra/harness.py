"""Run the real Pulumi program under ``pulumi.runtime.set_mocks`` and keep every resource it declares.

The mocks play AWS's part only as far as the program needs: they hand back realistic ids and ARNs
(``arn:aws:s3:::<bucket>``, ``arn:aws:sqs:<region>:<account>:<queue>``...) so that policies built from
other resources' outputs contain the same strings they would in a real account, and the tests can
follow every reference. Nothing is simplified in the program itself.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi.runtime.mocks import MockMonitor

from infra.program import Platform, build_platform, stack_outputs
from infra.stack_config import load_config

ACCOUNT = "123456789012"
REGION = "us-east-1"
TRITON_IMAGE = f"785573368785.dkr.ecr.{REGION}.amazonaws.com/sagemaker-tritonserver:24.09-py3"

#: Config every test stack starts from (``edgescribe:`` keys without the namespace).
BASE_CONFIG: Mapping[str, str] = {
    "imageTag": "git-3f9c2e1",
    "tritonImageUri": TRITON_IMAGE,
    "tritonModelVersion": "3",
}

ECS_CONFIG: Mapping[str, str] = {
    **BASE_CONFIG,
    "inferenceMode": "ecs",
    "tritonImageUri": "nvcr.io/nvidia/tritonserver:24.09-py3",
    "vpcId": "vpc-0a1b2c3d",
    "subnetIds": json.dumps(["subnet-0aaa1111", "subnet-0bbb2222"]),
}


@dataclass
class MockedResource:
    type: str
    name: str
    id: str
    inputs: dict[str, Any]
    state: dict[str, Any]
    parent: str = ""

    @property
    def urn(self) -> str:
        urn: str = self.state["__urn__"]
        return urn

    def policy(self, key: str = "policy") -> dict[str, Any]:
        """A JSON policy input, parsed."""
        value = self.inputs[key]
        parsed: dict[str, Any] = json.loads(value)
        return parsed


def _arn(service: str, resource: str, *, region: str = REGION, account: str = ACCOUNT) -> str:
    return f"arn:aws:{service}:{region}:{account}:{resource}"


def _physical_name(args: pulumi.runtime.MockResourceArgs) -> str:
    inputs = args.inputs
    for key in ("name", "bucket", "functionName", "family", "dashboardName"):
        value = inputs.get(key)
        if isinstance(value, str) and value:
            return value
    return f"{args.name}-1a2b3c4"


def _state_for(args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
    """Id and provider-computed outputs for one resource type, shaped like the real provider's."""
    typ = args.typ
    name = _physical_name(args)
    state: dict[str, Any] = {**args.inputs, "name": name}
    if typ == "aws:s3/bucket:Bucket":
        return name, {**state, "bucket": name, "arn": f"arn:aws:s3:::{name}"}
    if typ == "aws:sqs/queue:Queue":
        url = f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{name}"
        return url, {**state, "url": url, "arn": _arn("sqs", name)}
    if typ == "aws:dynamodb/table:Table":
        return name, {**state, "arn": _arn("dynamodb", f"table/{name}")}
    if typ == "aws:kms/key:Key":
        key_id = "0b7e4a8c-1111-2222-3333-444455556666"
        return key_id, {**state, "keyId": key_id, "arn": _arn("kms", f"key/{key_id}")}
    if typ == "aws:cloudwatch/logGroup:LogGroup":
        return name, {**state, "arn": _arn("logs", f"log-group:{name}")}
    if typ == "aws:iam/role:Role":
        return name, {**state, "arn": f"arn:aws:iam::{ACCOUNT}:role/{name}"}
    if typ == "aws:lambda/function:Function":
        arn = _arn("lambda", f"function:{name}")
        invoke = f"arn:aws:apigateway:{REGION}:lambda:path/2015-03-31/functions/{arn}/invocations"
        return name, {**state, "arn": arn, "invokeArn": invoke}
    if typ == "aws:ecr/repository:Repository":
        url = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{name}"
        return name, {**state, "repositoryUrl": url, "arn": _arn("ecr", f"repository/{name}")}
    if typ == "aws:apigatewayv2/api:Api":
        api_id = "a1b2c3d4e5"
        return api_id, {
            **state,
            "apiEndpoint": f"https://{api_id}.execute-api.{REGION}.amazonaws.com",
            "executionArn": _arn("execute-api", api_id),
        }
    if typ == "aws:apigatewayv2/stage:Stage":
        return name, {
            **state,
            "invokeUrl": f"https://{args.inputs['apiId']}.execute-api.{REGION}.amazonaws.com/",
        }
    if typ == "aws:cognito/userPool:UserPool":
        pool_id = f"{REGION}_AbCdEf123"
        return pool_id, {**state, "arn": _arn("cognito-idp", f"userpool/{pool_id}")}
    if typ == "aws:cognito/userPoolClient:UserPoolClient":
        return "4f3e2d1c0b9a8f7e6d5c4b3a2a", state
    if typ == "aws:sagemaker/endpoint:Endpoint":
        return name, {**state, "arn": _arn("sagemaker", f"endpoint/{name}")}
    if typ == "aws:lb/loadBalancer:LoadBalancer":
        return name, {
            **state,
            "arn": _arn("elasticloadbalancing", f"loadbalancer/app/{name}/50dc6c495c0c9188"),
            "arnSuffix": f"app/{name}/50dc6c495c0c9188",
            "dnsName": f"internal-{name}-1234567890.{REGION}.elb.amazonaws.com",
        }
    if typ == "aws:lb/targetGroup:TargetGroup":
        return name, {
            **state,
            "arn": _arn("elasticloadbalancing", f"targetgroup/{name}/73e2d6bc24d8a067"),
            "arnSuffix": f"targetgroup/{name}/73e2d6bc24d8a067",
        }
    if typ == "aws:ec2/securityGroup:SecurityGroup":
        return "sg-0123456789abcdef0", state
    if typ.startswith("aws:"):
        service = typ.split(":")[1].split("/")[0]
        return name, {**state, "arn": _arn(service, name)}
    return name, state


class RecordingMocks(pulumi.runtime.Mocks):
    def __init__(self) -> None:
        self.resources: dict[tuple[str, str], MockedResource] = {}
        self.calls: list[str] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        resource_id, state = _state_for(args)
        self.resources[(args.typ, args.name)] = MockedResource(
            type=args.typ, name=args.name, id=resource_id, inputs=dict(args.inputs), state=state
        )
        return resource_id, state

    def call(
        self, args: pulumi.runtime.MockCallArgs
    ) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        self.calls.append(args.token)
        return _invoke_result(args.token, args.args), []


def _invoke_result(token: str, args: Mapping[str, Any]) -> dict[str, Any]:
    """What the provider functions the program calls would answer for our test account."""
    if token == "aws:index/getCallerIdentity:getCallerIdentity":
        return {
            "accountId": ACCOUNT,
            "arn": f"arn:aws:iam::{ACCOUNT}:user/deployer",
            "userId": "AIDAEXAMPLE",
            "id": ACCOUNT,
        }
    if token == "aws:index/getRegion:getRegion":
        return {"name": REGION, "region": REGION, "id": REGION}
    if token == "aws:index/getPartition:getPartition":
        return {"partition": "aws", "dnsSuffix": "amazonaws.com", "id": "aws"}
    if token == "aws:ec2/getVpc:getVpc":
        return {"id": args.get("id"), "cidrBlock": "10.40.0.0/16"}
    if token == "aws:ssm/getParameter:getParameter":
        return {"name": args.get("name"), "value": "ami-0abcdef1234567890"}
    raise AssertionError(f"the program called an unexpected provider function: {token}")


class ParentRecordingMonitor(MockMonitor):
    """The stock mock monitor, plus who each resource's parent is (for the wiring tests)."""

    def __init__(self, mocks: RecordingMocks) -> None:
        super().__init__(mocks)
        self.recording = mocks

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 - gRPC method name
        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        resource = self.recording.resources.get((request.type, request.name))
        if resource is not None:
            resource.parent = request.parent
            resource.state["__urn__"] = response.urn
        return response


@dataclass
class DeployedStack:
    """Everything one mocked ``pulumi up`` declared, and its stack outputs."""

    stack: str
    resources: list[MockedResource]
    outputs: dict[str, Any]
    warnings: list[str] = field(default_factory=list)

    def of_type(self, typ: str) -> list[MockedResource]:
        return [r for r in self.resources if r.type == typ]

    def one(self, typ: str, name: str) -> MockedResource:
        matches = [r for r in self.resources if r.type == typ and r.name == name]
        assert len(matches) == 1, f"expected one {typ} named {name!r}, found {len(matches)}"
        return matches[0]

    def named(self, typ: str, physical_name: str) -> MockedResource:
        matches = [r for r in self.of_type(typ) if r.state.get("name") == physical_name]
        assert len(matches) == 1, f"expected one {typ} called {physical_name!r}, found {matches}"
        return matches[0]

    def by_urn(self) -> dict[str, MockedResource]:
        return {r.urn: r for r in self.resources}

    def children(self, component: MockedResource) -> list[MockedResource]:
        return [r for r in self.resources if r.parent == component.urn]

    def referencing(self, typ: str, key: str, value: str) -> list[MockedResource]:
        return [r for r in self.of_type(typ) if r.inputs.get(key) == value]


class _CollectWarnings(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def deploy(
    config: Mapping[str, str],
    *,
    stack: str = "test",
    build: Callable[[], Platform] | None = None,
) -> DeployedStack:
    """Run the program for ``stack`` with ``config`` (keys without ``edgescribe:``) under mocks."""
    mocks = RecordingMocks()
    warnings = _CollectWarnings()
    logger = logging.getLogger(f"tests.infra.pulumi.{stack}")
    logger.propagate = False
    logger.handlers[:] = [warnings]
    pulumi.runtime.set_mocks(
        mocks,
        project="edgescribe",
        stack=stack,
        preview=False,
        logger=logger,
        monitor=ParentRecordingMonitor(mocks),
    )
    pulumi.runtime.set_all_config(
        {"aws:region": REGION, **{f"edgescribe:{key}": value for key, value in config.items()}}
    )
    captured: dict[str, Any] = {}

    def run() -> pulumi.Output[Any]:
        platform = build() if build is not None else build_platform(load_config())
        return pulumi.Output.from_input(stack_outputs(platform)).apply(captured.update)

    pulumi.runtime.test(run)()  # type: ignore[no-untyped-call]
    return DeployedStack(
        stack=stack,
        resources=list(mocks.resources.values()),
        outputs=captured,
        warnings=warnings.messages,
    )


def statements(document: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    raw = document["Statement"]
    yield from ([raw] if isinstance(raw, dict) else raw)


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]
