"""Triton over gRPC and HTTP against a real server: same answers as in-process onnxruntime."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest
import tritonclient.grpc as grpcclient

from edgescribe.local.triton_server import TritonServer
from edgescribe.samples import Sample
from functions.inference.triton_batches import TritonBackendBase, TritonInferenceError
from functions.inference.triton_grpc import TritonGrpcBackend
from functions.inference.triton_http import TritonHttpBackend
from models.runtime.audio import DecodedAudio
from models.runtime.backend import OnnxRuntimeBackend
from models.runtime.session import AcousticModel
from models.runtime.transcriber import Transcriber
from models.runtime.transcript import ModelRef, Transcript
from models.triton.spec import TritonModelSpec

pytestmark = [pytest.mark.triton, pytest.mark.slow]


def backends(server: TritonServer, spec: TritonModelSpec) -> list[TritonBackendBase[Any]]:
    return [
        TritonGrpcBackend.connect(server.endpoints.grpc_url, spec.name),
        TritonHttpBackend.connect(server.endpoints.http_url, spec.name),
    ]


def word_timeline(transcript: Transcript) -> list[tuple[str, float, float]]:
    return [(w.word, w.start, w.end) for w in transcript.words]


def test_triton_grpc_http_and_onnxruntime_give_identical_transcripts(
    triton_server: TritonServer,
    served_spec: TritonModelSpec,
    cloud_model: AcousticModel,
    onnxruntime_transcriber: Transcriber,
    decoded_samples: list[tuple[Sample, DecodedAudio]],
) -> None:
    remote = [Transcriber(b, cloud_model.manifest) for b in backends(triton_server, served_spec)]

    for sample, audio in decoded_samples:
        reference = onnxruntime_transcriber.transcribe(audio, transcript_id=sample.path.stem)
        for transcriber in remote:
            transcript = transcriber.transcribe(audio, transcript_id=sample.path.stem)
            assert transcript.engine == "triton"
            assert transcript.model == ModelRef(name=served_spec.name, version=served_spec.version)
            assert transcript.text == reference.text, sample.path.name
            assert word_timeline(transcript) == word_timeline(reference), sample.path.name


def test_triton_log_probs_match_onnxruntime_despite_bucket_padding(
    triton_server: TritonServer,
    served_spec: TritonModelSpec,
    onnxruntime_backend: OnnxRuntimeBackend,
    decoded_samples: list[tuple[Sample, DecodedAudio]],
) -> None:
    """Stronger than equal text (which an undertrained model could reach by emitting nothing):
    the numbers agree, so padding a clip to its bucket changes nothing the decoder sees."""
    waveforms = [audio.samples for _, audio in decoded_samples]
    expected = [onnxruntime_backend.infer([w])[0] for w in waveforms]

    for backend in backends(triton_server, served_spec):
        for got, want in zip(backend.infer(waveforms), expected, strict=True):
            assert got.shape == want.shape
            np.testing.assert_allclose(got, want, atol=1e-4)


def test_mixed_lengths_in_one_call_come_back_in_caller_order(
    triton_server: TritonServer,
    served_spec: TritonModelSpec,
    onnxruntime_backend: OnnxRuntimeBackend,
) -> None:
    """Shorter than the model's minimum, mid-bucket, and beyond the largest bucket edge."""
    rng = np.random.default_rng(3)
    lengths = [800, 40_000, 17_000, 31 * 16_000, 40_000]
    waveforms = [(0.1 * rng.standard_normal(n)).astype(np.float32) for n in lengths]
    backend = TritonGrpcBackend.connect(triton_server.endpoints.grpc_url, served_spec.name)

    outputs = backend.infer(waveforms)

    for waveform, got in zip(waveforms, outputs, strict=True):
        want = onnxruntime_backend.infer([waveform])[0]
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, atol=1e-4)


def test_connect_reads_version_max_batch_and_buckets_from_the_server(
    triton_server: TritonServer, served_spec: TritonModelSpec
) -> None:
    for backend in backends(triton_server, served_spec):
        assert backend.model == ModelRef(name=served_spec.name, version=served_spec.version)
        assert backend.max_batch_size == served_spec.max_batch_size
        assert backend.buckets == served_spec.buckets


def test_unknown_model_is_a_specific_error_naming_it(triton_server: TritonServer) -> None:
    model = ModelRef(name="no-such-model", version=1)
    for backend in (
        TritonGrpcBackend(triton_server.endpoints.grpc_url, model),
        TritonHttpBackend(triton_server.endpoints.http_url, model),
    ):
        with pytest.raises(TritonInferenceError, match="no-such-model"):
            backend.infer([np.zeros(16_000, dtype=np.float32)])
    with pytest.raises(TritonInferenceError, match="cannot read model 'no-such-model'"):
        TritonGrpcBackend.connect(triton_server.endpoints.grpc_url, "no-such-model")


def test_malformed_request_gets_the_models_reason_not_a_crash(
    triton_server: TritonServer, served_spec: TritonModelSpec
) -> None:
    """A client that lies about lengths gets a clear error; the model keeps serving others."""
    client = grpcclient.InferenceServerClient(triton_server.endpoints.grpc_url)
    audio = grpcclient.InferInput("audio", [1, 16_000], "FP32")
    audio.set_data_from_numpy(np.zeros((1, 16_000), dtype=np.float32))
    lengths = grpcclient.InferInput("audio_lengths", [1, 1], "INT64")
    lengths.set_data_from_numpy(np.array([[20_000]], dtype=np.int64))

    with pytest.raises(grpcclient.InferenceServerException, match=r"must lie in 0\.\.16000"):
        client.infer(served_spec.name, [audio, lengths])
    client.close()

    backend = TritonGrpcBackend.connect(triton_server.endpoints.grpc_url, served_spec.name)
    assert len(backend.infer([np.zeros(16_000, dtype=np.float32)])) == 1


def test_each_thread_gets_its_own_client(
    triton_server: TritonServer, served_spec: TritonModelSpec
) -> None:
    """tritonclient.http clients are not thread-safe: sharing one across threads corrupts calls."""
    backend = TritonHttpBackend.connect(triton_server.endpoints.http_url, served_spec.name)
    clients: list[object] = []

    def record() -> None:
        clients.append(backend.client())
        clients.append(backend.client())

    threads = [threading.Thread(target=record) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(clients) == 6
    assert len({id(c) for c in clients}) == 3
    backend.close()
