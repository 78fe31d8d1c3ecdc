"""Every operation of docs/openapi.json, with concrete paths, for tests that must cover all routes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DOCUMENT = Path(__file__).resolve().parents[3] / "docs" / "openapi.json"
SAMPLE_PATH_VALUES = {"channel": "stable"}


def openapi() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(DOCUMENT.read_text(encoding="utf-8"))
    return document


def operations() -> list[tuple[str, str]]:
    """(METHOD, templated path) for every documented operation."""
    return sorted(
        (method.upper(), path) for path, item in openapi()["paths"].items() for method in item
    )


def concrete(path: str, value: str = "dev-1") -> str:
    """``/v1/devices/{device_id}/model`` → ``/v1/devices/dev-1/model``."""
    parts = []
    for part in path.split("/"):
        if part.startswith("{") and part.endswith("}"):
            parts.append(SAMPLE_PATH_VALUES.get(part[1:-1], value))
        else:
            parts.append(part)
    return "/".join(parts)
