"""Crash points for fault-injection tests: stop the agent dead at a named step of an update.

Set ``EDGESCRIBE_AGENT_FAULT=<step>`` (and optionally ``EDGESCRIBE_AGENT_FAULT_ACTION``):

* ``kill`` (default) — the agent sends itself SIGKILL at that step, exactly like ``kill -9``;
* ``pause`` — the agent writes the step name to ``EDGESCRIBE_AGENT_FAULT_MARKER`` (a file path) and
  waits, so a test can ``kill -9`` it from outside at a known instant.

Steps, in update order (``STEPS``): half the model downloaded, download complete, bytes verified,
model copied into the inactive slot but its manifest not yet written, slot staged, smoke test
passed, pointer temp file written but not yet renamed, pointer switched, health check started
(a model that kills the agent), health check passed but not yet committed.
Unset, ``fault_point`` costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

FAULT_ENV = "EDGESCRIBE_AGENT_FAULT"
ACTION_ENV = "EDGESCRIBE_AGENT_FAULT_ACTION"
MARKER_ENV = "EDGESCRIBE_AGENT_FAULT_MARKER"

STEPS = (
    "download-midway",
    "download-done",
    "verify-done",
    "stage-midway",
    "stage-done",
    "smoke-done",
    "switch-midway",
    "switch-done",
    "health-start",
    "health-done",
)


def fault_point(step: str) -> None:
    """Die or freeze here if the environment asks for it (tests only)."""
    if os.environ.get(FAULT_ENV) != step:
        return
    if os.environ.get(ACTION_ENV, "kill") == "pause":
        marker = os.environ.get(MARKER_ENV)
        if marker:
            Path(marker).write_text(step)
        while True:  # until the test kills us
            time.sleep(3600)
    os.kill(os.getpid(), signal.SIGKILL)
