"""Structured logs: one JSON object per line on stderr, so a fleet's logs can be queried.

``log_event(logger, "update-rejected", version=7, attack="rollback")`` writes
``{"ts": "...", "level": "WARNING", "logger": "edge.updater", "event": "update-rejected",
"version": 7, "attack": "rollback"}``. Events are short kebab-case names; details are fields.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "event": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            payload.update(fields)
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str)


def log_event(
    logger: logging.Logger, event: str, *, level: int = logging.INFO, **fields: Any
) -> None:
    logger.log(level, event, extra={"fields": fields})


def configure_logging(level: int = logging.INFO) -> None:
    """JSON lines on stderr for the ``edge`` loggers (idempotent)."""
    root = logging.getLogger("edge")
    root.setLevel(level)
    if not any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        root.addHandler(handler)
    root.propagate = False
