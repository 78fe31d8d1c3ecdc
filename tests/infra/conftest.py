"""Mocked deployments of the real program, one per inference mode (built once per session)."""

from __future__ import annotations

import pytest

from tests.infra.harness import BASE_CONFIG, ECS_CONFIG, DeployedStack, deploy


def pytest_configure(config: pytest.Config) -> None:
    # pulumi_aws warns about its own deprecated resource classes while it is imported.
    config.addinivalue_line("filterwarnings", "ignore::DeprecationWarning:pulumi_aws")


@pytest.fixture(scope="session")
def sagemaker_stack() -> DeployedStack:
    return deploy(BASE_CONFIG, stack="prod")


@pytest.fixture(scope="session")
def ecs_stack() -> DeployedStack:
    return deploy(ECS_CONFIG, stack="ecs")


@pytest.fixture(scope="session")
def onnxruntime_stack() -> DeployedStack:
    return deploy({**BASE_CONFIG, "inferenceMode": "none"}, stack="cpu")


@pytest.fixture(scope="session")
def bootstrap_stack() -> DeployedStack:
    """The first ``pulumi up``: no image tag yet, so no functions."""
    config = {key: value for key, value in BASE_CONFIG.items() if key != "imageTag"}
    return deploy(config, stack="fresh")


@pytest.fixture(params=["sagemaker", "ecs", "onnxruntime"])
def any_stack(
    request: pytest.FixtureRequest,
    sagemaker_stack: DeployedStack,
    ecs_stack: DeployedStack,
    onnxruntime_stack: DeployedStack,
) -> DeployedStack:
    return {"sagemaker": sagemaker_stack, "ecs": ecs_stack, "onnxruntime": onnxruntime_stack}[
        request.param
    ]
