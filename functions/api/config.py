"""Tunables of the API function, from its environment (infra sets them; defaults suit both)."""

from __future__ import annotations

import os

#: A pre-signed upload URL for a long recording is valid this long.
DEFAULT_UPLOAD_URL_TTL_SECONDS = 15 * 60
#: A pre-signed model download URL is valid this long: long enough to start a download on a slow
#: link (a started GET completes after expiry), short enough that a leaked URL is soon useless.
DEFAULT_MODEL_URL_TTL_SECONDS = 5 * 60


def _seconds(variable: str, default: int, ceiling: int) -> int:
    raw = os.environ.get(variable)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ValueError(f"{variable}={raw!r} is not a whole number of seconds") from exc
    if not 1 <= value <= ceiling:
        raise ValueError(f"{variable}={raw!r} must be within 1..{ceiling}")
    return value


def upload_url_ttl_seconds() -> int:
    return _seconds(
        "EDGESCRIBE_UPLOAD_URL_TTL_SECONDS", DEFAULT_UPLOAD_URL_TTL_SECONDS, 7 * 24 * 3600
    )


def model_url_ttl_seconds() -> int:
    return _seconds("EDGESCRIBE_MODEL_URL_TTL_SECONDS", DEFAULT_MODEL_URL_TTL_SECONDS, 3600)
