"""What a function reads from its environment: resource names and input limits.

Infra sets ``RECORDINGS_BUCKET``, ``TRANSCRIPTS_BUCKET``, ... from ``edgescribe.settings`` (see
``ResourceNames.as_environment``); a variable that is missing falls back to the name settings
derives from ``EDGESCRIBE_STACK``, so both ways agree. Read on each call (a dictionary lookup), not
at import, so the local stack and tests can point a loaded module at another stack.

Limits may be *lowered* per deployment (``EDGESCRIBE_MAX_UPLOAD_BYTES``,
``EDGESCRIBE_MAX_AUDIO_SECONDS``), never raised above the platform caps in settings: a typo in an
environment variable must not let a 50 GB object into a Lambda.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from edgescribe import settings


@dataclass(frozen=True)
class InputLimits:
    max_upload_bytes: int
    max_audio_seconds: float


def input_limits() -> InputLimits:
    return InputLimits(
        max_upload_bytes=int(_lowered("EDGESCRIBE_MAX_UPLOAD_BYTES", settings.MAX_UPLOAD_BYTES)),
        max_audio_seconds=_lowered("EDGESCRIBE_MAX_AUDIO_SECONDS", settings.MAX_AUDIO_SECONDS),
    )


def _lowered(variable: str, cap: float) -> float:
    raw = os.environ.get(variable)
    if not raw:
        return cap
    try:
        value = float(raw)
    except ValueError as exc:
        raise ValueError(f"{variable}={raw!r} is not a number") from exc
    if value <= 0:
        raise ValueError(f"{variable}={raw!r} must be positive")
    return min(value, cap)


def resource_name(variable: str) -> str:
    """A resource name from its environment variable (e.g. ``TRANSCRIPTS_BUCKET``)."""
    value = os.environ.get(variable)
    if value:
        return value
    defaults = settings.names_from_environment().as_environment()
    if variable not in defaults:
        raise KeyError(
            f"{variable} is not a resource-name variable; expected one of {sorted(defaults)}"
        )
    return defaults[variable]
