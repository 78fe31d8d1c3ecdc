"""The agent's small persistent state: one JSON file, replaced atomically on every change.

What it records and why:

* ``installed`` — the committed model (version, sha256, slot). The ``slots/current`` pointer is the
  single commit point for *which slot runs*; ``installed`` is rebuilt from the active slot when a
  crash left the two disagreeing (see ``Updater.recover``).
* ``highest_version`` — the anti-rollback floor: the highest version ever committed. Only ever rises.
* ``pending`` — an update in flight and the last step it completed, so a ``kill -9`` at any point
  resumes or abandons it cleanly on restart.
* ``last_outcome`` — what happened to the last update (installed / rejected / reverted /
  abandoned) until a heartbeat has reported it.
* ``blocked_artifacts`` — sha256 of models that failed the smoke or health test, so a broken
  release is not downloaded again on every poll (bounded).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationError

from edge.fsutil import atomic_write_text

Phase = Literal["downloading", "verified", "staged", "smoke-passed", "switched"]
OutcomeResult = Literal["installed", "rejected", "reverted", "abandoned"]
UpdateAction = Literal["update", "rollback"]

MAX_BLOCKED_ARTIFACTS = 32


class InstalledModel(BaseModel):
    name: str
    version: int
    sha256: str
    slot: str


class PendingUpdate(BaseModel):
    action: UpdateAction
    version: int
    sha256: str
    manifest_json: str
    directive_json: str | None = None
    phase: Phase = "downloading"
    slot: str | None = None  # the slot being staged / switched to
    previous_slot: str | None = None
    health_attempts: int = 0  # health checks started; one that never finished means a crash
    started_at: datetime


class UpdateOutcome(BaseModel):
    version: int
    action: UpdateAction
    result: OutcomeResult
    reason: str = ""
    attack: str = ""
    at: datetime
    reported: bool = False


class AgentState(BaseModel):
    schema_version: int = 1
    installed: InstalledModel | None = None
    highest_version: int = 0
    pending: PendingUpdate | None = None
    last_outcome: UpdateOutcome | None = None
    blocked_artifacts: dict[str, str] = Field(default_factory=dict)
    last_error: str | None = None

    def block(self, sha256: str, reason: str) -> None:
        self.blocked_artifacts[sha256] = reason
        while len(self.blocked_artifacts) > MAX_BLOCKED_ARTIFACTS:
            self.blocked_artifacts.pop(next(iter(self.blocked_artifacts)))


class StateStore:
    """Load and save ``AgentState`` at one path. A corrupt file is kept aside, never trusted."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> AgentState:
        try:
            return AgentState.model_validate_json(self.path.read_bytes())
        except FileNotFoundError:
            return AgentState()
        except (ValidationError, ValueError):
            # Never crash-loop on a bad state file: set it aside for a human, rebuild from slots.
            self.path.replace(self.path.with_name(self.path.name + ".corrupt"))
            return AgentState()

    def save(self, state: AgentState) -> None:
        atomic_write_text(self.path, state.model_dump_json(indent=2) + "\n")
