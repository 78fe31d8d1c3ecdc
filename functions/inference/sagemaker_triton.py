"""Triton behind a SageMaker real-time endpoint (``sagemaker-runtime:InvokeEndpoint``).

SageMaker's Triton container serves one model on ``/invocations`` and speaks Triton's HTTP
inference protocol there, with the binary-tensor extension signalled in the content type:
``application/vnd.sagemaker-triton.binary+json;json-header-size=<n>``. tritonclient builds and
parses exactly those bodies without a connection (``InferenceServerClient.generate_request_body``
and ``parse_response_body``), so this backend is: bucket -> build body -> ``invoke_endpoint`` ->
parse body -> trim. The boto3 client is created once per process and shared by threads (boto3
clients are thread-safe once built).
"""

from __future__ import annotations

import re
import threading
from typing import Any, Final

from functions.inference.http_bodies import http_inputs, http_outputs, outputs_from_result
from functions.inference.triton_batches import TritonBackendBase, TritonInferenceError
from models.runtime.bucketing import FloatArray, IntArray, PaddedBatch
from models.runtime.transcript import ModelRef

#: boto3's sagemaker-runtime client (typed ``Any``: no mypy-boto3 stubs for that service here).
SageMakerRuntimeClient = Any

BINARY_CONTENT_TYPE: Final = "application/vnd.sagemaker-triton.binary+json;json-header-size="
_HEADER_SIZE = re.compile(r"json-header-size=(\d+)")


def request_content_type(header_length: int | None) -> str:
    """Content type for a body from ``generate_request_body`` (JSON only when no binary part)."""
    return "application/json" if header_length is None else f"{BINARY_CONTENT_TYPE}{header_length}"


def response_header_length(content_type: str) -> int | None:
    """The JSON header length a binary response declares in its content type (None: all JSON)."""
    match = _HEADER_SIZE.search(content_type or "")
    return int(match.group(1)) if match else None


class SageMakerTritonBackend(TritonBackendBase[SageMakerRuntimeClient]):
    """One SageMaker endpoint whose container is Triton serving the EdgeScribe model."""

    def __init__(
        self,
        endpoint_name: str,
        model: ModelRef,
        *,
        endpoint_url: str | None = None,
        region_name: str | None = None,
        **options: Any,
    ) -> None:
        super().__init__(model, **options)
        self.endpoint_name = endpoint_name
        self.endpoint_url = endpoint_url
        self.region_name = region_name
        self._shared: SageMakerRuntimeClient | None = None
        self._shared_lock = threading.Lock()

    def _new_client(self) -> SageMakerRuntimeClient:
        """The process-wide sagemaker-runtime client (created on first use, then shared)."""
        with self._shared_lock:
            if self._shared is None:
                import boto3
                from botocore.config import Config

                config = Config(
                    retries={"max_attempts": 2, "mode": "standard"},
                    connect_timeout=min(self.timeout_seconds, 10.0),
                    read_timeout=self.timeout_seconds,
                )
                self._shared = boto3.session.Session().client(
                    "sagemaker-runtime",
                    endpoint_url=self.endpoint_url,
                    region_name=self.region_name,
                    config=config,
                )
            return self._shared

    def _send(
        self, client: SageMakerRuntimeClient, padded: PaddedBatch, priority: int
    ) -> tuple[FloatArray, IntArray]:
        import tritonclient.http as httpclient
        from botocore.exceptions import BotoCoreError, ClientError

        body, header_length = httpclient.InferenceServerClient.generate_request_body(
            http_inputs(padded), outputs=http_outputs(), priority=priority
        )
        try:
            response = client.invoke_endpoint(
                EndpointName=self.endpoint_name,
                ContentType=request_content_type(header_length),
                Accept="application/json",
                Body=body,
            )
            payload = response["Body"].read()
        except (BotoCoreError, ClientError) as exc:
            raise TritonInferenceError(f"SageMaker endpoint {self.endpoint_name!r}: {exc}") from exc
        result = httpclient.InferenceServerClient.parse_response_body(
            payload, header_length=response_header_length(response.get("ContentType", ""))
        )
        return outputs_from_result(result, self.endpoint_name)
