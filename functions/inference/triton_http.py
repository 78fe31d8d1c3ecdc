"""Triton over HTTP/REST (``tritonclient.http``), binary tensor payloads.

For networks where only HTTP passes (proxies, API gateways). ``tritonclient.http`` clients are not
thread-safe (one geventhttpclient connection pool and gevent hub per client), hence one per thread
(see :class:`~functions.inference.triton_batches.TritonBackendBase`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from functions.inference.http_bodies import http_inputs, http_outputs, outputs_from_result
from functions.inference.triton_batches import (
    TritonBackendBase,
    TritonInferenceError,
    options_from_model_config,
)
from models.runtime.bucketing import FloatArray, IntArray, PaddedBatch
from models.runtime.transcript import ModelRef

if TYPE_CHECKING:
    import tritonclient.http as httpclient


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
            raise TritonInferenceError(
                f"{url}: cannot read model {triton_model_name!r}: {exc}"
            ) from exc
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

    @staticmethod
    def close_client(client: httpclient.InferenceServerClient) -> None:
        client.close()

    def _send(
        self, client: httpclient.InferenceServerClient, padded: PaddedBatch, priority: int
    ) -> tuple[FloatArray, IntArray]:
        import tritonclient.http as httpclient

        try:
            result = client.infer(
                self.triton_model_name,
                http_inputs(padded),
                model_version=self.model_version,
                outputs=http_outputs(),
                priority=priority,
            )
        except httpclient.InferenceServerException as exc:
            raise TritonInferenceError(
                f"triton HTTP {self.url} model {self.triton_model_name!r}: {exc.message()}"
            ) from exc
        return outputs_from_result(result, self.triton_model_name)
