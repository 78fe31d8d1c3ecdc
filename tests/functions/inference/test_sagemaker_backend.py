"""The SageMaker Triton backend: invoke_endpoint with tritonclient-built bodies, real Triton behind.

See ``sagemaker_runtime.py`` for what stands in for AWS; the container side is the session's real
tritonserver with its SageMaker frontend enabled.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from edgescribe.local.triton_server import TritonServer
from edgescribe.samples import Sample
from functions.inference.sagemaker_triton import (
    SageMakerTritonBackend,
    request_content_type,
    response_header_length,
)
from functions.inference.triton_batches import TritonInferenceError
from models.runtime.audio import DecodedAudio
from models.runtime.backend import OnnxRuntimeBackend
from models.runtime.session import AcousticModel
from models.runtime.transcriber import Transcriber
from models.runtime.transcript import ModelRef
from models.triton.spec import TritonModelSpec
from tests.functions.inference.sagemaker_runtime import local_sagemaker_runtime

pytestmark = [pytest.mark.triton, pytest.mark.slow]

ENDPOINT = "edgescribe-cloud-prod"


@pytest.fixture(scope="module")
def runtime_url(triton_server: TritonServer) -> Iterator[str]:
    assert triton_server.endpoints.sagemaker_url is not None
    with local_sagemaker_runtime({ENDPOINT: triton_server.endpoints.sagemaker_url}) as url:
        yield url


def sagemaker_backend(
    runtime_url: str, spec: TritonModelSpec, endpoint: str = ENDPOINT
) -> SageMakerTritonBackend:
    return SageMakerTritonBackend(
        endpoint,
        ModelRef(name=spec.name, version=spec.version),
        endpoint_url=runtime_url,
        region_name="us-east-1",
        buckets=spec.buckets,
        timeout_seconds=30,
    )


def test_sagemaker_endpoint_transcribes_like_onnxruntime(
    runtime_url: str,
    served_spec: TritonModelSpec,
    cloud_model: AcousticModel,
    onnxruntime_backend: OnnxRuntimeBackend,
    onnxruntime_transcriber: Transcriber,
    decoded_samples: list[tuple[Sample, DecodedAudio]],
) -> None:
    backend = sagemaker_backend(runtime_url, served_spec)
    transcriber = Transcriber(backend, cloud_model.manifest)

    for sample, audio in decoded_samples:
        transcript = transcriber.transcribe(audio, transcript_id=sample.path.stem)
        reference = onnxruntime_transcriber.transcribe(audio, transcript_id=sample.path.stem)
        assert transcript.engine == "triton"
        assert transcript.text == reference.text
        got = backend.infer([audio.samples])[0]
        np.testing.assert_allclose(got, onnxruntime_backend.infer([audio.samples])[0], atol=1e-4)


def test_unknown_endpoint_is_a_specific_error(
    runtime_url: str, served_spec: TritonModelSpec
) -> None:
    backend = sagemaker_backend(runtime_url, served_spec, endpoint="no-such-endpoint")

    with pytest.raises(TritonInferenceError, match=r"'no-such-endpoint'.*ValidationError"):
        backend.infer([np.zeros(16_000, dtype=np.float32)])


def test_content_type_carries_the_json_header_length_both_ways() -> None:
    assert request_content_type(123) == (
        "application/vnd.sagemaker-triton.binary+json;json-header-size=123"
    )
    assert request_content_type(None) == "application/json"
    assert (
        response_header_length("application/vnd.sagemaker-triton.binary+json;json-header-size=77")
        == 77
    )
    assert response_header_length("application/json") is None
