"""The image lock: the whole dependency closure for Lambda, pinned, and never torch."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name

from infra.bundle.errors import BannedDistributionError, UnpinnedRequirementError
from infra.bundle.requirements import is_banned, lock, read_constraints
from infra.catalog import IMAGES
from tests.infra.bundle.conftest import REPOSITORY

Requires = Callable[[str], list[Requirement]]


def _index(graph: Mapping[str, list[str]]) -> tuple[dict[NormalizedName, str], Requires]:
    """Pins and a ``requires`` lookup for a made-up dependency graph."""
    pins = {canonicalize_name(name): "1.0" for name in graph}

    def requires(name: str) -> list[Requirement]:
        return [Requirement(line) for line in graph[canonicalize_name(name)]]

    return pins, requires


def test_refuses_a_dependency_that_pulls_torch_in_transitively() -> None:
    pins, requires = _index({"speechkit": ["resampler>=1"], "resampler": ["torch>=2"], "torch": []})
    with pytest.raises(BannedDistributionError, match="speechkit -> resampler -> torch"):
        lock(["speechkit"], pins, requires=requires)


@pytest.mark.parametrize(
    "name", ["torch", "Torch", "torchaudio", "nvidia-cublas-cu12", "nvidia_cudnn_cu12", "triton"]
)
def test_torch_and_its_cuda_wheels_are_banned(name: str) -> None:
    assert is_banned(name)


@pytest.mark.parametrize("name", ["tritonclient", "onnxruntime", "numpy", "boto3"])
def test_serving_dependencies_are_not_banned(name: str) -> None:
    assert not is_banned(name)


def test_markers_are_evaluated_for_the_lambda_runtime_and_the_requested_extras() -> None:
    pins, requires = _index(
        {
            "client": [
                "core",
                "windows-only; sys_platform == 'win32'",
                "old-backport; python_version < '3.10'",
                "http-stack; extra == 'http'",
                "grpc-stack; extra == 'grpc'",
            ],
            "core": [],
            "windows-only": [],
            "old-backport": [],
            "http-stack": [],
            "grpc-stack": [],
        }
    )
    plain = {r.name for r in lock(["client"], pins, requires=requires)}
    assert plain == {"client", "core"}
    with_http = {r.name for r in lock(["client[http]"], pins, requires=requires)}
    assert with_http == {"client", "core", "http-stack"}


def test_refuses_a_dependency_without_a_pin() -> None:
    pins, requires = _index({"app": ["helper"], "helper": []})
    del pins[canonicalize_name("helper")]
    with pytest.raises(UnpinnedRequirementError, match=r"helper .*no pin in constraints\.txt"):
        lock(["app"], pins, requires=requires)


def test_constraints_lines_must_be_exact_pins(tmp_path: Path) -> None:
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("numpy==1.26.4\n# comment\n\nscipy>=1\n", encoding="utf-8")
    with pytest.raises(UnpinnedRequirementError, match=":4: 'scipy>=1'"):
        read_constraints(constraints)


def test_repository_locks_serve_onnxruntime_and_keep_the_control_image_small() -> None:
    pins = read_constraints(REPOSITORY / "constraints.txt")
    transcriber = {r.name: r.version for r in lock(IMAGES["transcriber"].requirements, pins)}
    control = {r.name for r in lock(IMAGES["control"].requirements, pins)}
    onnxruntime = canonicalize_name("onnxruntime")
    assert transcriber[onnxruntime] == pins[onnxruntime]
    assert {"numpy", "soundfile", "scipy", "av", "aws-lambda-powertools", "pyjwt"} <= set(
        transcriber
    )
    assert not {"onnxruntime", "numpy", "scipy", "av"} & control
    for name in (*transcriber, *control):
        assert not is_banned(name), name


def test_every_runtime_and_functions_dependency_of_the_project_is_in_the_transcriber_image() -> (
    None
):
    """pyproject's runtime set + 'functions' extra is what a function may import; the image must
    install all of it (otherwise a cold start fails where local tests passed)."""
    import tomllib

    project = tomllib.loads((REPOSITORY / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    declared = [*project["dependencies"], *project["optional-dependencies"]["functions"]]
    pins = read_constraints(REPOSITORY / "constraints.txt")
    locked = {r.name for r in lock(IMAGES["transcriber"].requirements, pins)}
    for line in declared:
        assert canonicalize_name(Requirement(line).name) in locked, line
