"""Triton over gRPC (``tritonclient.grpc``): the default transport from functions and services."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from functions.inference.triton_batches import (
    AUDIO,
    AUDIO_LENGTHS,
    LOG_PROB_LENGTHS,
    LOG_PROBS,
    TritonBackendBase,
    TritonInferenceError,
    options_from_model_config,
)
from models.runtime.bucketing import FloatArray, IntArray, PaddedBatch
from models.runtime.transcript import ModelRef

if TYPE_CHECKING:
    import tritonclient.grpc as grpcclient


class TritonGrpcBackend(TritonBackendBase["grpcclient.InferenceServerClient"]):
    """``url`` is ``host:port`` of Triton's gRPC endpoint (no scheme)."""

    def __init__(self, url: str, model: ModelRef, **options: Any) -> None:
        super().__init__(model, **options)
        self.url = url

    @classmethod
    def connect(cls, url: str, triton_model_name: str, **options: Any) -> TritonGrpcBackend:
        """Build a backend from what the server says: served version, max batch, bucket edges."""
        import tritonclient.grpc as grpcclient

        client = grpcclient.InferenceServerClient(url)
        try:
            config = client.get_model_config(triton_model_name, as_json=True)["config"]
            metadata = client.get_model_metadata(triton_model_name, as_json=True)
        except grpcclient.InferenceServerException as exc:
            raise TritonInferenceError(
                f"{url}: cannot read model {triton_model_name!r}: {exc}"
            ) from exc
        finally:
            client.close()
        version = max(int(v) for v in metadata["versions"])
        model = ModelRef(name=triton_model_name, version=version)
        return cls(url, model, **options_from_model_config(config, options))

    def _new_client(self) -> grpcclient.InferenceServerClient:
        import tritonclient.grpc as grpcclient

        return grpcclient.InferenceServerClient(self.url)

    @staticmethod
    def close_client(client: grpcclient.InferenceServerClient) -> None:
        client.close()

    def _send(
        self, client: grpcclient.InferenceServerClient, padded: PaddedBatch, priority: int
    ) -> tuple[FloatArray, IntArray]:
        import tritonclient.grpc as grpcclient

        audio = grpcclient.InferInput(AUDIO, list(padded.audio.shape), "FP32")
        audio.set_data_from_numpy(padded.audio)
        lengths = grpcclient.InferInput(AUDIO_LENGTHS, [padded.lengths.shape[0], 1], "INT64")
        lengths.set_data_from_numpy(padded.lengths.reshape(-1, 1))
        outputs = [
            grpcclient.InferRequestedOutput(LOG_PROBS),
            grpcclient.InferRequestedOutput(LOG_PROB_LENGTHS),
        ]
        try:
            result = client.infer(
                self.triton_model_name,
                [audio, lengths],
                model_version=self.model_version,
                outputs=outputs,
                client_timeout=self.timeout_seconds,
                priority=priority,
            )
        except grpcclient.InferenceServerException as exc:
            raise TritonInferenceError(
                f"triton gRPC {self.url} model {self.triton_model_name!r}: {exc.message()}"
            ) from exc
        log_probs = result.as_numpy(LOG_PROBS)
        log_prob_lengths = result.as_numpy(LOG_PROB_LENGTHS)
        if log_probs is None or log_prob_lengths is None:
            raise TritonInferenceError(
                f"{self.triton_model_name}: response lacks the model outputs"
            )
        return log_probs, log_prob_lengths.reshape(-1)
