"""Triton over HTTP/REST (``tritonclient.http``), binary tensor payloads.

For networks where only HTTP passes (proxies, API gateways). ``tritonclient.http`` clients are not
thread-safe (one geventhttpclient connection pool and gevent hub per client), hence one per thread
(see :class:`~functions.inference.triton_batches.TritonBackendBase`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from functions.inference.triton_batches import (
    AUDIO,
    AUDIO_LENGTHS,
    LOG_PROB_LENGTHS,
    LOG_PROBS,
    TritonBackendBase,
    TritonInferenceError,
    options_from_model_config,
)
from models.runtime.bucketing import PaddedBatch
from models.runtime.transcript import ModelRef

if TYPE_CHECKING:
    import tritonclient.http as httpclient


def http_inputs(padded: PaddedBatch) -> list[httpclient.InferInput]:
    """The request tensors, binary-encoded (JSON lists of floats would be ~10x larger)."""
    import tritonclient.http as httpclient

    audio = httpclient.InferInput(AUDIO, list(padded.audio.shape), "FP32")
    audio.set_data_from_numpy(padded.audio, binary_data=True)
    lengths = httpclient.InferInput(AUDIO_LENGTHS, [padded.lengths.shape[0], 1], "INT64")
    lengths.set_data_from_numpy(padded.lengths.reshape(-1, 1), binary_data=True)
    return [audio, lengths]


def http_outputs() -> list[httpclient.InferRequestedOutput]:
    import tritonclient.http as httpclient

    return [
        httpclient.InferRequestedOutput(LOG_PROBS, binary_data=True),
        httpclient.InferRequestedOutput(LOG_PROB_LENGTHS, binary_data=True),
    ]


def outputs_from_result(result: httpclient.InferResult, model_name: str) -> tuple[np.ndarray, np.ndarray]:
    log_probs = result.as_numpy(LOG_PROBS)
    log_prob_lengths = result.as_numpy(LOG_PROB_LENGTHS)
    if log_probs is None or log_prob_lengths is None:
        raise TritonInferenceError(f"{model_name}: response lacks the model outputs")
    return log_probs, log_prob_lengths.reshape(-1)


class TritonHttpBackend(TritonBackendBase["httpclient.InferenceServerClient"]):
    """``url`` is ``host:port`` of Triton's HTTP endpoint (no scheme)."""

    def __init__(self, url: str, model: ModelRef, **options: Any) -> None:
        super().__init__(model, **options)
        self.url = url

    @classmethod
    def connect(cls, url: str, triton_model_name: str, **options: Any) -> TritonHttpBackend:
        """Build a backend from what the server says: served version, max batch, bucket edges."""
        import tritonclient.http as httpclient

        client = httpclient.InferenceServerClient(url)
        try:
            config = client.get_model_config(triton_model_name)
            metadata = client.get_model_metadata(triton_model_name)
        except httpclient.InferenceServerException as exc:
            raise TritonInferenceError(f"{url}: cannot read model {triton_model_name!r}: {exc}") from exc
        finally:
            client.close()
        version = max(int(v) for v in metadata["versions"])
        model = ModelRef(name=triton_model_name, version=version)
        return cls(url, model, **options_from_model_config(config, options))

    def _new_client(self) -> httpclient.InferenceServerClient:
        import tritonclient.http as httpclient

        return httpclient.InferenceServerClient(
            self.url,
            connection_timeout=min(self.timeout_seconds, 10.0),
            network_timeout=self.timeout_seconds,
        )

    def _close_client(self, client: httpclient.InferenceServerClient) -> None:
        client.close()

    def _send(
        self, client: httpclient.InferenceServerClient, padded: PaddedBatch
    ) -> tuple[np.ndarray, np.ndarray]:
        import tritonclient.http as httpclient

        try:
            result = client.infer(
                self.triton_model_name,
                http_inputs(padded),
                model_version=self.model_version,
                outputs=http_outputs(),
            )
        except httpclient.InferenceServerException as exc:
            raise TritonInferenceError(
                f"triton HTTP {self.url} model {self.triton_model_name!r}: {exc.message()}"
            ) from exc
        return outputs_from_result(result, self.triton_model_name)
