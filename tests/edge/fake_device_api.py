"""An in-test device API: real HTTP on 127.0.0.1 speaking the device protocol, with fault injection.

It plays the distribution server *and* the attacker/bad network: the test decides what it offers
(any manifest, signed or not) and how blobs are served (tampered, short, endless, trickled, cut
mid-transfer, Range ignored, 5xx). It records everything the agent sent, so tests assert on the
wire, not on the agent's opinion of itself.

Routes: ``GET /v1/devices/{id}/model``, ``POST /v1/devices/{id}/heartbeat``,
``POST /v1/devices/{id}/transcripts``, ``POST /v1/feedback``, ``POST /v1/transcriptions``,
``GET /blobs/{name}`` (the "pre-signed" URL; honours ``Range``).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import Enum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from edgescribe.local.ports import free_port


class BlobFault(Enum):
    NONE = "none"
    TAMPER = "tamper"  # one byte flipped, same length
    SHORT = "short"  # the object is shorter than the manifest says (honest Content-Length)
    ENDLESS = "endless"  # no Content-Length, bytes forever
    OVERSIZE = "oversize"  # Content-Length larger than the manifest says
    SLOW = "slow"  # trickles bytes: never stalls long enough for a read timeout
    CUT_ONCE = "cut_once"  # first transfer dies after ``cut_after`` bytes
    IGNORE_RANGE = "ignore_range"  # always 200 with the whole object
    STALL = "stall"  # sends headers and a few bytes, then nothing


@dataclass
class Offer:
    action: str
    manifest: dict[str, Any] | None = None
    blob_name: str | None = None
    rollback_directive: dict[str, Any] | None = None
    trust_root: dict[str, Any] | None = None


@dataclass
class FakeDeviceApi:
    token: str = "device-token"
    offers: dict[str, Offer] = field(default_factory=dict)  # device id ("*" = any) -> offer
    blobs: dict[str, bytes] = field(default_factory=dict)
    blob_fault: BlobFault = BlobFault.NONE
    cut_after: int = 100_000
    trickle_bytes: int = 512
    trickle_delay: float = 0.02
    fail_next: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    cloud_transcribe: Callable[[bytes, str], dict[str, Any]] | None = None
    cloud_delay_seconds: float = 0.0
    offline: bool = False  # drop every connection without an answer (the link is down)
    # --- what the agent did ---
    heartbeats: list[dict[str, Any]] = field(default_factory=list)
    model_queries: list[str] = field(default_factory=list)  # the ``current`` values asked with
    blob_requests: list[str | None] = field(default_factory=list)  # Range header of each GET
    blob_bytes_sent: int = 0
    stored: dict[str, dict[str, Any]] = field(default_factory=dict)  # idempotency key -> first body
    deliveries: Counter[str] = field(default_factory=Counter)  # key -> POSTs received
    cloud_requests: int = 0
    closing: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    base_url: str = ""

    def offer(self, offer: Offer, device: str = "*") -> None:
        self.offers[device] = offer

    def offer_for(self, device: str) -> Offer:
        return self.offers.get(device) or self.offers.get("*") or Offer(action="none")

    def fail(self, route: str, *statuses: int) -> None:
        """The next requests to ``route`` (model, heartbeat, blob, feedback, transcripts,
        transcriptions) answer these statuses, in order."""
        self.fail_next[route].extend(statuses)

    def stored_of_kind(self, route: str) -> list[dict[str, Any]]:
        return [body for key, body in self.stored.items() if body.get("_route") == route]


class _Handler(BaseHTTPRequestHandler):
    api: FakeDeviceApi
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    # -- helpers ------------------------------------------------------------------------------------
    def _json(self, status: int, payload: Any, content_type: str = "application/json") -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _problem(self, status: int, detail: str) -> None:
        self._json(
            status,
            {"title": "error", "status": status, "detail": detail},
            "application/problem+json",
        )

    def _injected_failure(self, route: str) -> bool:
        with self.api.lock:
            queue = self.api.fail_next.get(route)
            status = queue.pop(0) if queue else None
        if status is None:
            return False
        self._problem(status, f"injected {status}")
        return True

    def _authorized(self) -> bool:
        if self.headers.get("Authorization") == f"Bearer {self.api.token}":
            return True
        self._problem(401, "missing or invalid bearer token")
        return False

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    # -- routes -------------------------------------------------------------------------------------
    def _dropped(self) -> bool:
        if self.api.offline:
            self.close_connection = True
        return self.api.offline

    def do_GET(self) -> None:
        if self._dropped():
            return
        url = urlparse(self.path)
        if url.path.startswith("/blobs/"):
            self._blob(url.path.removeprefix("/blobs/"))
            return
        match = re.fullmatch(r"/v1/devices/([^/]+)/model", url.path)
        if not match:
            self._problem(404, "no such route")
            return
        if not self._authorized() or self._injected_failure("model"):
            return
        current = parse_qs(url.query).get("current", [""])[0]
        self.api.model_queries.append(current)
        offer = self.api.offer_for(match.group(1))
        payload: dict[str, Any] = {"action": offer.action}
        if offer.manifest is not None:
            payload["manifest"] = offer.manifest
        if offer.blob_name is not None:
            payload["url"] = f"/blobs/{offer.blob_name}?X-Amz-Expires=300"
        if offer.rollback_directive is not None:
            payload["rollback"] = offer.rollback_directive
        if offer.trust_root is not None:
            payload["trust_root"] = offer.trust_root
        self._json(200, payload)

    def do_POST(self) -> None:
        body = self._body()
        if self._dropped():
            return
        url = urlparse(self.path)
        route = None
        if re.fullmatch(r"/v1/devices/[^/]+/heartbeat", url.path):
            route = "heartbeat"
        elif re.fullmatch(r"/v1/devices/[^/]+/transcripts", url.path):
            route = "transcripts"
        elif url.path == "/v1/feedback":
            route = "feedback"
        elif url.path == "/v1/transcriptions":
            route = "transcriptions"
        if route is None:
            self._problem(404, "no such route")
            return
        if route == "transcriptions":
            self.api.cloud_requests += 1
        if not self._authorized() or self._injected_failure(route):
            return
        if route == "heartbeat":
            self.api.heartbeats.append(json.loads(body))
            self._json(200, {"ok": True})
        elif route == "transcriptions":
            self._cloud_transcription(body, url.query)
        else:
            key = self.headers.get("Idempotency-Key")
            if not key:
                self._problem(400, "Idempotency-Key header required")
                return
            with self.api.lock:
                self.api.deliveries[key] += 1
                first = key not in self.api.stored
                if first:
                    self.api.stored[key] = {**json.loads(body), "_route": route}
            self._json(201 if first else 200, {"key": key, "duplicate": not first})

    def _cloud_transcription(self, body: bytes, query: str) -> None:
        if self.api.cloud_delay_seconds:
            self.api.closing.wait(self.api.cloud_delay_seconds)
        if self.api.cloud_transcribe is None:
            self._problem(503, "no cloud engine")
            return
        transcript_id = parse_qs(query).get("id", ["cloud"])[0]
        self._json(200, self.api.cloud_transcribe(body, transcript_id))

    def _blob(self, name: str) -> None:
        if self._injected_failure("blob"):
            return
        data = self.api.blobs.get(name)
        if data is None:
            self._problem(404, "no such blob")
            return
        range_header = self.headers.get("Range")
        self.api.blob_requests.append(range_header)
        fault = self.api.blob_fault
        if fault is BlobFault.TAMPER:
            data = data[:-1] + bytes([data[-1] ^ 0xFF])
        elif fault is BlobFault.SHORT:
            data = data[:-1000]
        start = 0
        match = re.fullmatch(r"bytes=(\d+)-", range_header or "")
        if match and fault is not BlobFault.IGNORE_RANGE:
            start = int(match.group(1))
            if start >= len(data):
                self._problem(416, "range not satisfiable")
                return
        body = data[start:]
        if fault is BlobFault.ENDLESS:
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            self._write_until_closed(lambda: b"\0" * 65536)
            return
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        declared = len(body) + (1_000_000 if fault is BlobFault.OVERSIZE else 0)
        self.send_header("Content-Length", str(declared))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        if fault is BlobFault.SLOW:
            chunks = iter(
                body[i : i + self.api.trickle_bytes]
                for i in range(0, len(body), self.api.trickle_bytes)
            )
            self._write_until_closed(lambda: next(chunks, b""), delay=self.api.trickle_delay)
            return
        if fault is BlobFault.STALL:
            self._send(body[:1024])
            self.api.closing.wait(30)
            self.close_connection = True
            return
        if fault is BlobFault.CUT_ONCE:
            self.api.blob_fault = BlobFault.NONE
            self._send(body[: self.api.cut_after])
            self.close_connection = True
            return
        if fault is BlobFault.OVERSIZE:
            self._send(body + b"\0" * 1_000_000)
            return
        self._send(body)

    def _send(self, data: bytes) -> None:
        try:
            self.wfile.write(data)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
            return
        self.api.blob_bytes_sent += len(data)

    def _write_until_closed(self, produce: Callable[[], bytes], delay: float = 0.0) -> None:
        while not self.api.closing.is_set():
            chunk = produce()
            if not chunk:
                return
            try:
                self.wfile.write(chunk)
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True
                return
            self.api.blob_bytes_sent += len(chunk)
            if delay:
                time.sleep(delay)


@contextmanager
def serve_fake_device_api(api: FakeDeviceApi | None = None) -> Iterator[FakeDeviceApi]:
    api = api or FakeDeviceApi()
    handler = type("BoundHandler", (_Handler,), {"api": api})
    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="fake-device-api", daemon=True)
    thread.start()
    api.base_url = f"http://127.0.0.1:{port}"
    try:
        yield api
    finally:
        api.closing.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
