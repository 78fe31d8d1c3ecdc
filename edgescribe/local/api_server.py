"""The HTTP API on 127.0.0.1: real HTTP in, API Gateway HTTP API (v2) events to the real handler.

curl, the edge agent and the end-to-end tests talk HTTP to this server exactly as they would to the
API Gateway URL; each request becomes the payload-2.0 event API Gateway would send
(``rawPath`` as sent, lower-cased headers with repeats joined by commas, ``cookies``,
``queryStringParameters``, binary bodies base64-encoded with ``isBase64Encoded``) and
``functions.api.app.handler`` answers it. Nothing is re-implemented: routing, validation,
authentication and errors are the function's own.

Model and upload URLs in responses are pre-signed against ``AWS_ENDPOINT_URL``, so devices download
models straight from the moto server, as they would from S3.

Authentication runs in the handler (``EDGESCRIBE_AUTH_MODE=verify``). ``LocalTokenAuthority``
creates a throwaway Ed25519 key, points the verifier at its public half and issues tokens::

    python -m edgescribe.local.api_server --port 8080 --token device:dev-1@acme
    curl -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:8080/v1/devices/dev-1/model?current=0"
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from edgescribe.local.ports import free_port

#: Bodies larger than this are refused before they are read (API Gateway's own cap is 10 MB).
MAX_REQUEST_BYTES = 10 * 1024 * 1024
LOCAL_ISSUER = "edgescribe-local"
LOCAL_AUDIENCE = "edgescribe-api"
_TEXT_TYPES = ("application/json", "text/")

LambdaHandler = Callable[[dict[str, Any], Any], dict[str, Any]]


# --- request ⇄ event ----------------------------------------------------------------------------


def event_from_request(
    method: str,
    target: str,
    headers: list[tuple[str, str]],
    body: bytes,
    *,
    source_ip: str = "127.0.0.1",
) -> dict[str, Any]:
    """The API Gateway HTTP API (payload 2.0) event for one HTTP request."""
    split = urlsplit(target)
    joined: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in headers:
        lowered = name.lower()
        if lowered == "cookie":
            cookies.extend(part.strip() for part in value.split(";") if part.strip())
            continue
        joined[lowered] = f"{joined[lowered]},{value}" if lowered in joined else value
    query: dict[str, str] = {}
    for key, value in parse_qsl(split.query, keep_blank_values=True):
        query[key] = f"{query[key]},{value}" if key in query else value
    now = time.time()
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": split.path or "/",
        "rawQueryString": split.query,
        "headers": joined,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": joined.get("host", "127.0.0.1"),
            "domainPrefix": "local",
            "http": {
                "method": method.upper(),
                "path": split.path or "/",
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": joined.get("user-agent", ""),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": "$default",
            "stage": "$default",
            "time": datetime.fromtimestamp(now, UTC).strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": False,
    }
    if cookies:
        event["cookies"] = cookies
    if query:
        event["queryStringParameters"] = query
    if body:
        content_type = joined.get("content-type", "").lower()
        text = _as_text(body) if content_type.startswith(_TEXT_TYPES) else None
        if text is None:
            event["body"] = base64.b64encode(body).decode("ascii")
            event["isBase64Encoded"] = True
        else:
            event["body"] = text
    return event


def _as_text(body: bytes) -> str | None:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return None


@dataclass(frozen=True)
class HttpResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def response_from_result(result: Mapping[str, Any]) -> HttpResponse:
    """The HTTP response for a handler's payload-2.0 result."""
    body = result.get("body") or ""
    data = base64.b64decode(body) if result.get("isBase64Encoded") else str(body).encode("utf-8")
    headers = [(str(k), str(v)) for k, v in (result.get("headers") or {}).items()]
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers.extend((str(name), str(value)) for value in values)
    headers.extend(("Set-Cookie", str(cookie)) for cookie in result.get("cookies") or [])
    return HttpResponse(status=int(result.get("statusCode", 200)), headers=headers, body=data)


# --- the server ---------------------------------------------------------------------------------


def _make_request_handler(
    lambda_handler: LambdaHandler, lock: threading.Lock
) -> type[BaseHTTPRequestHandler]:
    class ApiRequestHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "EdgeScribeLocalApi/1"

        def _handle(self) -> None:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                self._send_plain(411, "chunked bodies are not supported; send Content-Length")
                return
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                self._send_plain(400, "invalid Content-Length")
                return
            if length < 0 or length > MAX_REQUEST_BYTES:
                self._send_plain(413, f"request body over {MAX_REQUEST_BYTES} bytes")
                self.close_connection = True
                return
            body = self.rfile.read(length) if length else b""
            event = event_from_request(
                self.command,
                self.path,
                list(self.headers.items()),
                body,
                source_ip=self.client_address[0],
            )
            from edgescribe.local.lambda_context import LocalLambdaContext

            with lock:  # one request at a time, like one Lambda container
                result = lambda_handler(event, LocalLambdaContext(function_name="edgescribe-api"))
            response = response_from_result(result)
            self.send_response(response.status)
            for name, value in response.headers:
                if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(response.body)

        def _send_plain(self, status: int, message: str) -> None:
            payload = json.dumps(
                {"type": "about:blank", "title": message, "status": status, "detail": message}
            ).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/problem+json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self) -> None:
            self._handle()

        def do_POST(self) -> None:
            self._handle()

        def do_PUT(self) -> None:
            self._handle()

        def do_PATCH(self) -> None:
            self._handle()

        def do_DELETE(self) -> None:
            self._handle()

        def do_HEAD(self) -> None:
            self._handle()

        def do_OPTIONS(self) -> None:
            self._handle()

        def log_message(self, format: str, *args: Any) -> None:
            if os.environ.get("EDGESCRIBE_API_ACCESS_LOG"):
                super().log_message(format, *args)

    return ApiRequestHandler


@dataclass(frozen=True)
class LocalApi:
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


@contextmanager
def serve_api(
    port: int | None = None,
    *,
    host: str = "127.0.0.1",
    lambda_handler: LambdaHandler | None = None,
) -> Iterator[LocalApi]:
    """Serve the API function on ``host:port`` (a free port by default) until the context exits.

    The handler reads its resource names, AWS endpoint and auth settings from this process's
    environment, so set those first (``edgescribe.local.running_stack`` and
    ``LocalTokenAuthority.environment()`` do).
    """
    if lambda_handler is None:
        from functions.api.app import handler

        lambda_handler = handler
    server = ThreadingHTTPServer(
        (host, port or free_port()), _make_request_handler(lambda_handler, threading.Lock())
    )
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="edgescribe-local-api", daemon=True)
    thread.start()
    try:
        yield LocalApi(host=host, port=int(server.server_address[1]))
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


# --- local tokens -------------------------------------------------------------------------------


class LocalTokenAuthority:
    """A throwaway token issuer for the local stack (never for the cloud: Cognito or an IdP is)."""

    def __init__(self, directory: Path) -> None:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        self._key = Ed25519PrivateKey.generate()
        directory.mkdir(parents=True, exist_ok=True)
        self.public_key_path = directory / "api-token-public.pem"
        self.public_key_path.write_bytes(
            self._key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
        )

    def environment(self) -> dict[str, str]:
        """What the handler needs to verify this authority's tokens."""
        return {
            "EDGESCRIBE_AUTH_MODE": "verify",
            "EDGESCRIBE_JWT_KEYS": str(self.public_key_path),
            "EDGESCRIBE_JWT_ISSUER": LOCAL_ISSUER,
            "EDGESCRIBE_JWT_AUDIENCE": LOCAL_AUDIENCE,
        }

    def sign(self, claims: dict[str, Any]) -> str:
        """Any claims, signed by this authority (tests use it to build bad tokens too)."""
        import jwt

        return jwt.encode(claims, self._key, algorithm="EdDSA")

    def issue(
        self, *, subject: str, tenant: str, role: str, ttl: timedelta = timedelta(hours=12)
    ) -> str:
        now = datetime.now(UTC)
        claims = {
            "iss": LOCAL_ISSUER,
            "aud": LOCAL_AUDIENCE,
            "sub": subject,
            "tenant": tenant,
            "role": role,
            "iat": int(now.timestamp()),
            "exp": int((now + ttl).timestamp()),
        }
        return self.sign(claims)


def parse_token_spec(spec: str) -> tuple[str, str, str]:
    """``role:subject@tenant`` → (role, subject, tenant)."""
    role, _, rest = spec.partition(":")
    subject, _, tenant = rest.rpartition("@")
    if not (role and subject and tenant):
        raise ValueError(f"token spec {spec!r} is not role:subject@tenant")
    return role, subject, tenant


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve the EdgeScribe API on 127.0.0.1.")
    parser.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    parser.add_argument(
        "--token",
        action="append",
        default=[],
        metavar="ROLE:SUBJECT@TENANT",
        help="print a bearer token for this identity (repeatable)",
    )
    args = parser.parse_args(argv)
    if "AWS_ENDPOINT_URL" not in os.environ:
        parser.error("set AWS_ENDPOINT_URL (a moto server: edgescribe local up) first")
    with tempfile.TemporaryDirectory(prefix="edgescribe-api-") as folder:
        authority = LocalTokenAuthority(Path(folder))
        os.environ.update(authority.environment())
        with serve_api(args.port or None) as api:
            print(f"EdgeScribe API on {api.url}", flush=True)
            for spec in args.token:
                role, subject, tenant = parse_token_spec(spec)
                print(
                    f"{spec}: {authority.issue(subject=subject, tenant=tenant, role=role)}",
                    flush=True,
                )
            try:
                threading.Event().wait()
            except KeyboardInterrupt:
                return 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
