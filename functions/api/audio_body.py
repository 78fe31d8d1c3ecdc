"""The body of ``POST /v1/transcriptions``: raw audio or JSON, checked before anything decodes it.

Accepted forms:

- raw audio: ``Content-Type: audio/<format>`` (``audio/wav``, ``audio/mpeg``, ``audio/mp4``, ...) or
  ``application/octet-stream`` with ``?format=wav``. API Gateway delivers binary bodies base64-encoded
  (``isBase64Encoded``);
- JSON: ``{"format": "wav", "audio_base64": "..."}``; or ``{"format": "wav"}`` alone to announce a
  long recording and get an upload URL.

Checks, cheapest first: the body's size (before decoding base64: a 100 MB body costs nothing to
refuse), the content type, JSON syntax and fields, base64 validity, then the decoded size again.
Decoding the audio itself is the route's job (``models.runtime.audio`` names what is wrong).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass

from pydantic import ValidationError

from edgescribe import settings
from functions.api.problems import (
    FieldError,
    MalformedJson,
    PayloadTooLarge,
    Unprocessable,
    UnsupportedMediaType,
)
from functions.api.schemas import MAX_AUDIO_BASE64_CHARS, TranscriptionRequest

#: MIME types phones and browsers send, to our format names (the storage extension).
MIME_FORMATS = {
    "audio/wav": "wav",
    "audio/wave": "wav",
    "audio/x-wav": "wav",
    "audio/vnd.wave": "wav",
    "audio/flac": "flac",
    "audio/x-flac": "flac",
    "audio/ogg": "ogg",
    "audio/opus": "opus",
    "audio/mpeg": "mp3",
    "audio/mp3": "mp3",
    "audio/mp4": "m4a",
    "audio/m4a": "m4a",
    "audio/x-m4a": "m4a",
    "audio/aac": "aac",
    "audio/webm": "webm",
}
#: JSON adds a few bytes around the base64 text.
_JSON_OVERHEAD = 1024


@dataclass(frozen=True)
class AudioClip:
    data: bytes
    format: str


@dataclass(frozen=True)
class UploadAnnouncement:
    format: str


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def parse_transcription_body(
    body: str | None,
    *,
    is_base64: bool,
    content_type: str | None,
    query_format: str | None,
) -> AudioClip | UploadAnnouncement:
    body = body or ""
    limit = MAX_AUDIO_BASE64_CHARS + _JSON_OVERHEAD
    if len(body) > limit:
        raise PayloadTooLarge(
            f"request body is {len(body)} bytes; clips sent inline are limited to "
            f"{settings.SYNC_MAX_BYTES} bytes of audio — announce long recordings with "
            '{"format": ...} and upload them to the returned URL'
        )
    kind = media_type(content_type)
    if kind in ("", "application/json"):
        return _parse_json(body, is_base64=is_base64)
    if kind.startswith("audio/") or kind == "application/octet-stream":
        fmt = query_format or MIME_FORMATS.get(kind)
        if fmt is None:
            raise UnsupportedMediaType(
                f"cannot tell the audio format from Content-Type {kind!r}; use one of "
                f"{', '.join(sorted(MIME_FORMATS))} or add ?format=<wav|flac|ogg|opus|mp3|m4a|aac|webm>"
            )
        data = _b64decode(body, "request body") if is_base64 else body.encode("utf-8")
        return AudioClip(data=_capped(data), format=fmt)
    raise UnsupportedMediaType(
        f"unsupported Content-Type {kind!r}; send audio/<format>, application/octet-stream "
        "with ?format=, or application/json"
    )


def _parse_json(body: str, *, is_base64: bool) -> AudioClip | UploadAnnouncement:
    raw = _b64decode(body, "request body") if is_base64 else body.encode("utf-8")
    try:
        document = strict_json_loads(raw)
    except json.JSONDecodeError as exc:
        raise MalformedJson(f"request body is not valid JSON: {exc}") from exc
    try:
        request = TranscriptionRequest.model_validate(document)
    except ValidationError as exc:
        errors = [
            FieldError(loc=["body", *error["loc"]], msg=error["msg"], type=error["type"])
            for error in exc.errors()
        ]
        first = errors[0]
        where = ".".join(str(part) for part in first.loc)
        raise Unprocessable(f"{where}: {first.msg}", errors=errors) from exc
    if request.audio_base64 is None:
        return UploadAnnouncement(format=request.format)
    data = _b64decode(request.audio_base64, "audio_base64")
    return AudioClip(data=_capped(data), format=request.format)


def strict_json_loads(raw: str | bytes) -> object:
    """``json.loads`` whose every failure is a ``JSONDecodeError``.

    Plain ``json.loads`` raises ``RecursionError`` for ``[[[[...`` nested thousands deep and
    ``ValueError`` for integers longer than Python's digit limit; left alone, both would surface as
    500s for what is plainly bad input.
    """
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        raise
    except UnicodeDecodeError as exc:
        raise json.JSONDecodeError(f"not UTF-8 ({exc.reason})", "", exc.start) from exc
    except RecursionError as exc:
        raise json.JSONDecodeError("nested too deeply", "", 0) from exc
    except ValueError as exc:
        raise json.JSONDecodeError(str(exc), "", 0) from exc


def _b64decode(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise Unprocessable(f"{what} is not valid base64: {exc}") from exc


def _capped(data: bytes) -> bytes:
    if len(data) > settings.SYNC_MAX_BYTES:
        raise PayloadTooLarge(
            f"audio is {len(data)} bytes; the synchronous limit is {settings.SYNC_MAX_BYTES} bytes"
        )
    return data
