"""Backend selection from a function's environment: explicit errors, no crash when Triton is down."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgescribe.local.ports import free_port
from edgescribe.local.triton_server import TritonServer
from edgescribe.samples import Sample
from functions.inference.selection import (
    InferenceConfigurationError,
    InferenceSettings,
    build_backend,
    transcriber_from_environment,
)
from functions.inference.triton_grpc import TritonGrpcBackend
from functions.inference.triton_http import TritonHttpBackend
from models.runtime.audio import DecodedAudio
from models.runtime.backend import OnnxRuntimeBackend
from models.runtime.fallback import FallbackBackend
from models.triton.spec import TritonModelSpec


@pytest.mark.parametrize(
    ("env", "reason"),
    [
        (
            {"EDGESCRIBE_INFERENCE": "gpu-please"},
            "EDGESCRIBE_INFERENCE='gpu-please'; expected one of",
        ),
        ({"EDGESCRIBE_INFERENCE": "triton-grpc", "TRITON_MODEL_VERSION": "1"}, "needs TRITON_URL"),
        (
            {"EDGESCRIBE_INFERENCE": "triton-http", "TRITON_URL": "h:1"},
            "needs TRITON_MODEL_VERSION",
        ),
        (
            {"EDGESCRIBE_INFERENCE": "sagemaker", "TRITON_MODEL_VERSION": "1"},
            "needs SAGEMAKER_ENDPOINT",
        ),
        ({"EDGESCRIBE_TRITON_TIMEOUT_SECONDS": "soon"}, "'soon' is not a float"),
        ({"EDGESCRIBE_BREAKER_FAILURES": "-2"}, "must be positive"),
        (
            {
                "EDGESCRIBE_INFERENCE": "triton-grpc",
                "TRITON_URL": "h:1",
                "TRITON_MODEL_VERSION": "v2",
            },
            "TRITON_MODEL_VERSION='v2' is not a int",
        ),
    ],
)
def test_incomplete_or_bad_environment_names_the_variable(env: dict[str, str], reason: str) -> None:
    with pytest.raises(InferenceConfigurationError, match=reason):
        InferenceSettings.from_environment(env)


def test_default_is_in_process_onnxruntime(cloud_model_dir: Path) -> None:
    settings = InferenceSettings.from_environment({"EDGESCRIBE_MODEL_DIR": str(cloud_model_dir)})
    backend = build_backend(settings)
    assert isinstance(backend, OnnxRuntimeBackend)
    assert backend.engine == "onnxruntime-cloud"


@pytest.mark.parametrize(
    ("mode", "primary_type"),
    [("triton-grpc", TritonGrpcBackend), ("triton-http", TritonHttpBackend)],
)
def test_triton_modes_put_onnxruntime_behind_triton(
    cloud_model_dir: Path, mode: str, primary_type: type
) -> None:
    settings = InferenceSettings.from_environment(
        {
            "EDGESCRIBE_INFERENCE": mode,
            "TRITON_URL": "127.0.0.1:1",
            "TRITON_MODEL_VERSION": "4",
            "EDGESCRIBE_MODEL_DIR": str(cloud_model_dir),
            "EDGESCRIBE_BREAKER_FAILURES": "5",
        }
    )
    backend = build_backend(settings)

    assert isinstance(backend, FallbackBackend)
    assert isinstance(backend.primary, primary_type)
    assert backend.primary.model.version == 4
    assert backend.breaker.failure_threshold == 5


@pytest.mark.triton
@pytest.mark.slow
def test_environment_transcriber_uses_triton_when_it_is_up(
    triton_server: TritonServer,
    served_spec: TritonModelSpec,
    cloud_model_dir: Path,
    decoded_samples: list[tuple[Sample, DecodedAudio]],
) -> None:
    env = {
        "EDGESCRIBE_INFERENCE": "triton-grpc",
        "TRITON_URL": triton_server.endpoints.grpc_url,
        "TRITON_MODEL_VERSION": str(served_spec.version),
        "EDGESCRIBE_MODEL_DIR": str(cloud_model_dir),
    }
    transcriber = transcriber_from_environment(env)
    sample, audio = decoded_samples[0]

    transcript = transcriber.transcribe(audio, transcript_id=sample.path.stem)

    assert transcript.engine == "triton"
    assert transcriber_from_environment(env) is transcriber  # built once per process


def test_cold_start_with_triton_down_still_transcribes(
    cloud_model_dir: Path, decoded_samples: list[tuple[Sample, DecodedAudio]]
) -> None:
    """Nothing contacts Triton while building; the first request falls back instead of failing."""
    env = {
        "EDGESCRIBE_INFERENCE": "triton-grpc",
        "TRITON_URL": f"127.0.0.1:{free_port()}",
        "TRITON_MODEL_VERSION": "1",
        "EDGESCRIBE_MODEL_DIR": str(cloud_model_dir),
        "EDGESCRIBE_TRITON_TIMEOUT_SECONDS": "5",
    }
    transcriber = transcriber_from_environment(env)
    sample, audio = decoded_samples[1]

    transcript = transcriber.transcribe(audio, transcript_id=sample.path.stem)

    assert transcript.engine == "onnxruntime-cloud"
    assert transcript.model.name == "edgescribe-cloud"
