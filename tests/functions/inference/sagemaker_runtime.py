"""A local stand-in for the SageMaker runtime API in front of a real Triton SageMaker frontend.

In the cloud, ``invoke_endpoint`` goes to ``runtime.sagemaker.<region>.amazonaws.com``
(``POST /endpoints/<name>/invocations``), and SageMaker forwards the body and content type to
the container's ``POST /invocations``. moto cannot run containers, so this small HTTP server
plays the AWS side — route by endpoint name, forward, wrap container errors as ``ModelError``
(HTTP 424, as SageMaker does) — while the container side is the real tritonserver started with
``--allow-sagemaker`` (``edgescribe.local.triton_server``, ``sagemaker_model=...``). boto3 talks
to it as to AWS (signed requests, real botocore parsing).
"""

from __future__ import annotations

import json
import re
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_INVOCATIONS = re.compile(r"^/endpoints/([^/]+)/invocations$")


class _SageMakerRuntimeHandler(BaseHTTPRequestHandler):
    server: _SageMakerRuntimeServer

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: test output stays readable."""

    def _error(self, status: int, code: str, message: str) -> None:
        payload = json.dumps({"message": message}).encode()
        self.send_response(status)
        self.send_header("X-Amzn-ErrorType", code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_POST(self) -> None:
        match = _INVOCATIONS.match(self.path)
        if match is None or match.group(1) not in self.server.endpoints:
            self._error(400, "ValidationError", f"Endpoint {self.path} of account not found.")
            return
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        forward = urllib.request.Request(  # noqa: S310 - loopback URL from the test fixture
            f"{self.server.endpoints[match.group(1)]}/invocations",
            data=body,
            headers={"Content-Type": self.headers.get("Content-Type", "application/json")},
            method="POST",
        )
        try:
            with urllib.request.urlopen(forward, timeout=60) as response:  # noqa: S310
                payload = response.read()
                content_type = response.headers.get("Content-Type", "application/json")
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")
            self._error(
                424, "ModelError", f"Received client error ({exc.code}) from primary: {detail}"
            )
            return
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("x-Amzn-Invoked-Production-Variant", "AllTraffic")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


class _SageMakerRuntimeServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, endpoints: dict[str, str]) -> None:
        super().__init__(("127.0.0.1", 0), _SageMakerRuntimeHandler)
        self.endpoints = endpoints


@contextmanager
def local_sagemaker_runtime(endpoints: dict[str, str]) -> Iterator[str]:
    """Serve ``{endpoint name: container base URL}``; yield the runtime's endpoint URL."""
    server = _SageMakerRuntimeServer(endpoints)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
