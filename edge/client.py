"""The device protocol, client side: small, urllib only (no boto3, no requests on devices).

Routes (served by ``functions/api``; see docs/decisions/0400-edge-agent.md):

* ``GET  /v1/devices/{id}/model?current=N`` → ``{action: none|update|rollback, manifest, url}``
  (+ ``rollback``: the signed directive, and optional ``trust_root``; see ``edge.trust``);
* ``POST /v1/devices/{id}/heartbeat``       ← ``{version, health, queue_depth, last_error, ...}``;
* ``POST /v1/transcriptions``               ← a short clip (raw audio body) → ``Transcript`` JSON;
* ``POST /v1/feedback``                     ← a correction; idempotent by its ``feedback_id``;
* ``POST /v1/devices/{id}/transcripts``     ← a transcript produced offline
  (``{transcript, produced_at, cloud_error}``; idempotent by transcript id and ``Idempotency-Key``).

Every request carries ``Authorization: Bearer <device JWT>``. Failures map onto the two families in
``edge.errors``: ``TransientError`` (connection, timeout, 5xx, 408, 429 → back off and retry) and
``RequestRejectedError`` (other 4xx → do not retry the same request). Response bodies are capped:
a hostile server cannot make the agent read an endless reply.
"""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from edge.errors import (
    LinkError,
    MalformedManifestError,
    RequestRejectedError,
    ServerUnavailableError,
)
from models.runtime.transcript import Transcript

MAX_RESPONSE_BYTES = 4 * 1024 * 1024
AUDIO_MIME_TYPES = {
    "wav": "audio/wav",
    "flac": "audio/flac",
    "ogg": "audio/ogg",
    "opus": "audio/opus",
    "mp3": "audio/mpeg",
    "m4a": "audio/mp4",
    "aac": "audio/aac",
    "webm": "audio/webm",
}
OfferAction = Literal["none", "update", "rollback"]


@dataclass(frozen=True)
class ModelOffer:
    """What the server wants this device to run. Nothing here is trusted until verified."""

    action: OfferAction
    manifest: dict[str, Any] | None = None
    url: str | None = None
    rollback_directive: dict[str, Any] | None = None
    trust_root: dict[str, Any] | None = None


@dataclass(frozen=True)
class HttpReply:
    status: int
    body: bytes
    headers: Mapping[str, str]

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError as exc:
            raise MalformedManifestError(f"server reply is not JSON: {self.body[:80]!r}") from exc


class DeviceClient:
    """One device's view of the API. Thread-safe: it holds no connection between calls."""

    def __init__(
        self,
        api_url: str,
        device_id: str,
        token: Callable[[], str],
        *,
        timeout_seconds: float = 30.0,
    ) -> None:
        self.api_url = api_url.rstrip("/") + "/"
        self.device_id = device_id
        self._token = token
        self.timeout_seconds = timeout_seconds

    # -- routes -------------------------------------------------------------------------------
    def get_model_offer(self, current_version: int) -> ModelOffer:
        path = f"v1/devices/{urllib.parse.quote(self.device_id)}/model?current={current_version}"
        payload = self.request("GET", path).json()
        if not isinstance(payload, dict) or payload.get("action") not in (
            "none",
            "update",
            "rollback",
        ):
            raise MalformedManifestError(f"model offer has no valid action: {str(payload)[:120]}")
        action: OfferAction = payload["action"]
        if action == "none":
            return ModelOffer(action="none", trust_root=_as_document(payload.get("trust_root")))
        manifest = _as_document(payload.get("manifest"))
        url = payload.get("url")
        if manifest is None or not isinstance(url, str) or not url:
            raise MalformedManifestError(f"{action} offer lacks a manifest or a download URL")
        return ModelOffer(
            action=action,
            manifest=manifest,
            url=urllib.parse.urljoin(self.api_url, url),
            rollback_directive=_as_document(payload.get("rollback")),
            trust_root=_as_document(payload.get("trust_root")),
        )

    def heartbeat(self, report: Mapping[str, Any]) -> None:
        path = f"v1/devices/{urllib.parse.quote(self.device_id)}/heartbeat"
        self.request("POST", path, json_body=report)

    def post_feedback(self, payload: Mapping[str, Any], idempotency_key: str) -> None:
        self.request("POST", "v1/feedback", json_body=payload, idempotency_key=idempotency_key)

    def post_edge_transcript(self, payload: Mapping[str, Any], idempotency_key: str) -> None:
        path = f"v1/devices/{urllib.parse.quote(self.device_id)}/transcripts"
        self.request("POST", path, json_body=payload, idempotency_key=idempotency_key)

    def transcribe(self, audio: bytes, *, filename: str, timeout_seconds: float) -> Transcript:
        """Synchronous cloud transcription of a short clip (raw audio body, type by extension).

        The server names the transcript (its id is the one the cloud stores it under)."""
        extension = filename.rsplit(".", 1)[-1].lower() if "." in filename else "wav"
        content_type = AUDIO_MIME_TYPES.get(extension, "application/octet-stream")
        path = "v1/transcriptions"
        if content_type == "application/octet-stream":
            path += "?" + urllib.parse.urlencode({"format": extension})
        reply = self.request(
            "POST", path, body=audio, content_type=content_type, timeout_seconds=timeout_seconds
        )
        payload = reply.json()
        if isinstance(payload, dict) and isinstance(payload.get("transcript"), dict):
            payload = payload["transcript"]
        try:
            return Transcript.model_validate(payload)
        except ValueError as exc:
            raise MalformedManifestError(f"cloud transcript does not parse: {exc}") from exc

    # -- transport ------------------------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Mapping[str, Any] | None = None,
        body: bytes | None = None,
        content_type: str | None = None,
        idempotency_key: str | None = None,
        timeout_seconds: float | None = None,
    ) -> HttpReply:
        url = urllib.parse.urljoin(self.api_url, path)
        if json_body is not None:
            body = json.dumps(json_body, separators=(",", ":"), default=str).encode()
            content_type = "application/json"
        request = urllib.request.Request(url, data=body, method=method)  # noqa: S310
        token = self._token()
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        request.add_header("Accept", "application/json")
        if content_type:
            request.add_header("Content-Type", content_type)
        if idempotency_key:
            request.add_header("Idempotency-Key", idempotency_key)
        timeout = self.timeout_seconds if timeout_seconds is None else timeout_seconds
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
                data = response.read(MAX_RESPONSE_BYTES + 1)
                if len(data) > MAX_RESPONSE_BYTES:
                    raise MalformedManifestError(
                        f"{method} {path}: reply over {MAX_RESPONSE_BYTES} bytes"
                    )
                return HttpReply(response.status, data, dict(response.headers.items()))
        except urllib.error.HTTPError as exc:
            detail = _problem_detail(exc)
            if exc.code >= 500 or exc.code in (408, 429):
                raise ServerUnavailableError(exc.code, f"{method} {path}: {detail}") from exc
            raise RequestRejectedError(exc.code, f"{method} {path}: {detail}") from exc
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            raise LinkError(f"{method} {path}: {exc}") from exc


def _as_document(value: Any) -> dict[str, Any] | None:
    """Signed documents arrive as JSON objects or as JSON text; normalise to a dict."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise MalformedManifestError("signed document is not JSON") from exc
    if not isinstance(value, dict):
        raise MalformedManifestError("signed document is not a JSON object")
    return value


def _problem_detail(exc: urllib.error.HTTPError) -> str:
    try:
        raw = exc.read(16 * 1024)
        problem = json.loads(raw)
        if isinstance(problem, dict):
            return str(problem.get("detail") or problem.get("title") or problem)[:300]
        return str(problem)[:300]
    except (ValueError, OSError):
        return exc.reason if isinstance(exc.reason, str) else "no detail"
