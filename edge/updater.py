"""Install what the server offers — or refuse it — without ever leaving the device without a model.

One update walks these steps; after each, ``state.json`` records how far it got (``pending.phase``)
so a ``kill -9`` or power cut anywhere resumes or abandons cleanly:

    verify manifest → download (resumable) → verify bytes → stage into the inactive slot
    → smoke test (child process) → switch pointer (atomic) → health check (in-process) → commit

* Before the switch the active slot is untouched: a crash or a rejection leaves the old model
  running. On restart the next sync resumes from the furthest step still provably done (a complete
  partial file is re-hashed, a staged slot is re-validated), or abandons the update if the server
  no longer offers it.
* After the switch the new model is on *trial* until the health check passes (Mender's commit). A
  failed check — or a crash during it, counted in ``health_attempts`` as Mender counts boots —
  switches the pointer back to the previous slot, which was kept intact for exactly this.
* A model that fails smoke or health is *blocked* by sha256 so it is not downloaded on every poll.
* The outcome (installed / rejected / reverted / abandoned) waits in the state until a heartbeat
  reports it.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge.clock import Clock
from edge.config import AGENT_VERSION, AgentConfig
from edge.download import DownloadLimits, download_resumable
from edge.errors import (
    HealthCheckFailedError,
    NoWorkingModelError,
    SmokeTestFailedError,
    UpdateRejectedError,
)
from edge.faults import fault_point
from edge.fsutil import atomic_write_text, remove_stale_temporaries
from edge.logs import log_event
from edge.slots import SLOT_NAMES, SlotError, Slots
from edge.smoke import run_smoke_test
from edge.state import (
    AgentState,
    InstalledModel,
    PendingUpdate,
    StateStore,
    UpdateAction,
    UpdateOutcome,
)
from edge.trust import TrustRoot, parse_rollback_directive, parse_trust_root
from edge.verification import (
    VerificationContext,
    accept_trust_root,
    verify_artifact,
    verify_manifest,
)
from models.runtime.manifest import ModelManifest
from models.runtime.rollback_directive import RollbackDirective

logger = logging.getLogger("edge.updater")

#: After this many health checks that never finished (the agent died during them), revert.
MAX_HEALTH_ATTEMPTS = 2

SmokeTest = Callable[[Path], Any]
HealthCheck = Callable[[Path], Any]


@dataclass
class _ByteCount:
    value: int = 0


@dataclass(frozen=True)
class UpdateReport:
    """What one ``apply`` did: the outcome (None when nothing happened) and bytes downloaded."""

    outcome: UpdateOutcome | None
    fetched_bytes: int = 0


class Updater:
    def __init__(
        self,
        config: AgentConfig,
        clock: Clock,
        *,
        smoke_test: SmokeTest | None = None,
        health_check: HealthCheck | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.store = StateStore(config.state_file)
        self.slots = Slots(config.slots_dir)
        self._smoke_test = smoke_test or self._default_smoke_test
        self._health_check = health_check or self._smoke_test

    # -- trust ------------------------------------------------------------------------------------
    def trust_root(self) -> TrustRoot:
        """The installed trust root (after rotations), or the keys pinned in the config."""
        if self.config.trust_file.is_file():
            return parse_trust_root(self.config.trust_file.read_bytes())
        return TrustRoot.pinned(self.config.trusted_keys, self.config.signature_threshold)

    def rotate_trust(self, raw: dict[str, Any]) -> bool:
        """Accept a newer trust root if it is properly signed by old and new keys."""
        current = self.trust_root()
        candidate = parse_trust_root(raw)
        if candidate.version <= current.version:
            return False
        accepted = accept_trust_root(current, candidate)
        atomic_write_text(self.config.trust_file, accepted.model_dump_json(indent=2) + "\n")
        log_event(logger, "trust-rotated", version=accepted.version, keys=len(accepted.keys))
        return True

    # -- start-up ---------------------------------------------------------------------------------
    def recover(self) -> AgentState:
        """Run at start: remove crash debris, make the pointer name a valid slot, settle ``pending``."""
        state = self.store.load()
        self.slots.clean_debris()
        remove_stale_temporaries(self.config.state_dir)
        active = self._ensure_valid_active(state)
        pending = state.pending
        if pending is not None:
            if pending.phase in ("switched", "smoke-passed") and pending.slot == active:
                pending.phase = "switched"
                if pending.previous_slot is None:
                    pending.previous_slot = Slots.other(active)
                self.store.save(state)
                with contextlib.suppress(HealthCheckFailedError):  # reverted and recorded
                    self._health_then_commit(state)
                state = self.store.load()
                active = self.slots.active()
            elif pending.phase in ("staged", "smoke-passed", "switched"):
                # The switch never became durable: the staged slot is re-validated on the next sync.
                pending.phase = "staged"
        self._sync_installed(state, active)
        self._remove_orphan_downloads(state)
        self.store.save(state)
        return state

    def _ensure_valid_active(self, state: AgentState) -> str | None:
        active = self.slots.active()
        if active is not None:
            try:
                self.slots.validate(active)
                return active
            except SlotError as exc:
                log_event(
                    logger, "active-slot-invalid", level=logging.ERROR, slot=active, reason=str(exc)
                )
        preferred = [state.installed.slot] if state.installed else []
        for slot in [*preferred, *SLOT_NAMES]:
            if slot == active:
                continue
            try:
                self.slots.validate(slot)
            except SlotError:
                continue
            self.slots.switch(slot)
            log_event(logger, "active-slot-restored", level=logging.WARNING, slot=slot)
            return slot
        return None

    def _sync_installed(self, state: AgentState, active: str | None) -> None:
        if active is None:
            state.installed = None
            return
        manifest = self.slots.manifest(active)
        state.installed = InstalledModel(
            name=manifest.name, version=manifest.version, sha256=manifest.sha256, slot=active
        )
        if state.pending is None or state.pending.action != "rollback":
            state.highest_version = max(state.highest_version, manifest.version)

    def _remove_orphan_downloads(self, state: AgentState) -> None:
        keep = f"{state.pending.sha256}.part" if state.pending else None
        if self.config.downloads_dir.is_dir():
            for part in self.config.downloads_dir.iterdir():
                if part.name != keep:
                    part.unlink(missing_ok=True)

    def active_model_dir(self) -> Path:
        active = self.slots.active()
        if active is None:
            raise NoWorkingModelError(
                "no model installed: provision one with `edgescribe-agent init --model-dir DIR` "
                "or let the agent sync"
            )
        return self.slots.path(active)

    # -- one offer --------------------------------------------------------------------------------
    def apply(
        self,
        action: str,
        manifest_raw: dict[str, Any],
        url: str,
        directive_raw: dict[str, Any] | None,
    ) -> UpdateReport:
        """Verify and install one ``update``/``rollback`` offer. Raises ``TransientError`` to retry."""
        state = self.store.load()
        version = _claimed_version(manifest_raw)
        update_action: UpdateAction = "rollback" if action == "rollback" else "update"
        try:
            directive = parse_rollback_directive(directive_raw) if directive_raw else None
            manifest = verify_manifest(manifest_raw, self._context(state), directive)
        except UpdateRejectedError as exc:
            if state.installed is not None and version == state.installed.version:
                return UpdateReport(outcome=None)  # the server re-offers what we run: nothing to do
            return UpdateReport(self._reject(state, version, update_action, exc))

        if state.installed is not None and manifest.sha256 == state.installed.sha256:
            if state.pending is not None:
                self._abandon(state, "the offered model is already installed")
            return UpdateReport(outcome=None)
        if manifest.sha256 in state.blocked_artifacts:
            log_event(
                logger,
                "offer-blocked",
                version=manifest.version,
                reason=state.blocked_artifacts[manifest.sha256],
            )
            return UpdateReport(outcome=None)
        if state.pending is not None and state.pending.sha256 != manifest.sha256:
            self._abandon(state, f"superseded by v{manifest.version}")
            state = self.store.load()
        if state.pending is None:
            state.pending = PendingUpdate(
                action=update_action,
                version=manifest.version,
                sha256=manifest.sha256,
                manifest_json=manifest.model_dump_json(),
                directive_json=directive.model_dump_json() if directive else None,
                started_at=self.clock.now(),
            )
            self.store.save(state)
            log_event(logger, "update-started", action=update_action, version=manifest.version)
        moved = _ByteCount()
        try:
            self._install(state, manifest, url, moved)
        except HealthCheckFailedError:  # reverted and recorded
            return UpdateReport(self.store.load().last_outcome, moved.value)
        except UpdateRejectedError as exc:
            state = self.store.load()
            self._discard_partial(manifest.sha256)
            state.pending = None
            if isinstance(exc, SmokeTestFailedError):
                state.block(manifest.sha256, str(exc))
            outcome = self._reject(state, manifest.version, update_action, exc)
            return UpdateReport(outcome, moved.value)
        return UpdateReport(self.store.load().last_outcome, moved.value)

    def _context(self, state: AgentState) -> VerificationContext:
        return VerificationContext(
            trust=self.trust_root(),
            expected_name=self.config.model_name,
            now=self.clock.now(),
            highest_version=state.highest_version,
            installed_version=state.installed.version if state.installed else None,
            max_model_bytes=self.config.max_model_bytes,
            agent_version=AGENT_VERSION,
            require_expiry=self.config.require_expiry,
        )

    def _install(
        self, state: AgentState, manifest: ModelManifest, url: str, moved: _ByteCount
    ) -> None:
        pending = state.pending
        assert pending is not None
        active = self.slots.active()
        target = Slots.other(active)
        pending.slot = target
        pending.previous_slot = active
        if not self.slots.holds(target, manifest.sha256):
            part = self._part_path(manifest.sha256)
            result = download_resumable(
                url,
                part,
                manifest.size,
                DownloadLimits(
                    read_timeout_seconds=self.config.read_timeout_seconds,
                    min_bytes_per_second=self.config.min_download_bytes_per_second,
                    grace_seconds=self.config.download_grace_seconds,
                ),
            )
            moved.value += result.fetched
            log_event(
                logger,
                "download-complete",
                version=manifest.version,
                fetched=result.fetched,
                resumed_from=result.resumed_from,
            )
            fault_point("download-done")
            verify_artifact(part, manifest)
            pending.phase = "verified"
            self.store.save(state)
            fault_point("verify-done")
            self.slots.stage(target, part, manifest, midway=lambda: fault_point("stage-midway"))
            part.unlink(missing_ok=True)
        pending.phase = "staged"
        self.store.save(state)
        fault_point("stage-done")

        self._smoke_test(self.slots.path(target))
        pending.phase = "smoke-passed"
        self.store.save(state)
        fault_point("smoke-done")

        self.slots.switch(target, midway=lambda: fault_point("switch-midway"))
        pending.phase = "switched"
        self.store.save(state)
        log_event(logger, "switched", slot=target, version=manifest.version)
        fault_point("switch-done")
        self._health_then_commit(state)

    def _health_then_commit(self, state: AgentState) -> None:
        """Trial of the switched-to model: commit it, or put the previous slot back."""
        pending = state.pending
        assert pending is not None
        assert pending.slot is not None
        pending.health_attempts += 1
        self.store.save(state)
        fault_point("health-start")
        manifest = ModelManifest.model_validate_json(pending.manifest_json)
        try:
            if pending.health_attempts > MAX_HEALTH_ATTEMPTS:
                raise HealthCheckFailedError(
                    f"the agent died {pending.health_attempts - 1} times during the health check"
                )
            try:
                self._health_check(self.slots.path(pending.slot))
            except SmokeTestFailedError as exc:
                raise HealthCheckFailedError(f"health check after switch failed: {exc}") from exc
            except Exception as exc:  # any failure of the live model is a failed health check
                raise HealthCheckFailedError(
                    f"health check after switch failed: {type(exc).__name__}: {exc}"
                ) from exc
        except HealthCheckFailedError as exc:
            self._revert(state, exc)
            raise
        fault_point("health-done")
        state.installed = InstalledModel(
            name=manifest.name, version=manifest.version, sha256=manifest.sha256, slot=pending.slot
        )
        if pending.action == "update":
            state.highest_version = max(state.highest_version, manifest.version)
        state.last_outcome = UpdateOutcome(
            version=manifest.version, action=pending.action, result="installed", at=self.clock.now()
        )
        state.pending = None
        state.last_error = None
        self.store.save(state)
        log_event(logger, "update-committed", version=manifest.version, action=pending.action)

    def _revert(self, state: AgentState, exc: UpdateRejectedError) -> None:
        pending = state.pending
        assert pending is not None
        previous = pending.previous_slot or Slots.other(pending.slot)
        try:
            self.slots.validate(previous)
        except SlotError as invalid:
            log_event(logger, "revert-impossible", level=logging.ERROR, reason=str(invalid))
        else:
            self.slots.switch(previous)
            self._sync_installed(state, previous)
        state.block(pending.sha256, str(exc))
        state.last_outcome = UpdateOutcome(
            version=pending.version,
            action=pending.action,
            result="reverted",
            reason=str(exc),
            attack=exc.attack,
            at=self.clock.now(),
        )
        state.last_error = f"v{pending.version} reverted: {exc}"
        state.pending = None
        self.store.save(state)
        log_event(
            logger, "update-reverted", level=logging.ERROR, version=pending.version, reason=str(exc)
        )

    # -- bookkeeping ------------------------------------------------------------------------------
    def _reject(
        self, state: AgentState, version: int, action: str, exc: UpdateRejectedError
    ) -> UpdateOutcome:
        outcome = UpdateOutcome(
            version=version,
            action="rollback" if action == "rollback" else "update",
            result="rejected",
            reason=str(exc),
            attack=exc.attack,
            at=self.clock.now(),
        )
        state.last_outcome = outcome
        state.last_error = f"v{version} rejected: {exc}"
        if state.pending is not None and state.pending.version == version:
            state.pending = None
        self.store.save(state)
        log_event(
            logger,
            "update-rejected",
            level=logging.WARNING,
            version=version,
            check=type(exc).__name__,
            attack=exc.attack,
            reason=str(exc),
        )
        return outcome

    def abandon_pending(self, reason: str) -> None:
        state = self.store.load()
        if state.pending is not None:
            self._abandon(state, reason)

    def _abandon(self, state: AgentState, reason: str) -> None:
        pending = state.pending
        assert pending is not None
        self._discard_partial(pending.sha256)
        state.last_outcome = UpdateOutcome(
            version=pending.version,
            action=pending.action,
            result="abandoned",
            reason=reason,
            at=self.clock.now(),
        )
        state.pending = None
        self.store.save(state)
        log_event(logger, "update-abandoned", version=pending.version, reason=reason)

    def _part_path(self, sha256: str) -> Path:
        return self.config.downloads_dir / f"{sha256}.part"

    def _discard_partial(self, sha256: str) -> None:
        self._part_path(sha256).unlink(missing_ok=True)

    def _default_smoke_test(self, model_dir: Path) -> Any:
        return run_smoke_test(
            model_dir,
            clip=self.config.smoke_clip,
            max_cer=self.config.smoke_max_cer,
            timeout_seconds=self.config.smoke_timeout_seconds,
            intra_op_threads=self.config.intra_op_threads,
        )

    # -- provisioning -------------------------------------------------------------------------------
    def provision(self, model_dir: Path, *, skip_signature: bool = False) -> InstalledModel:
        """Factory install: put a released model into the active slot (signature checked)."""
        from edge.verification import check_signatures

        manifest = ModelManifest.load(model_dir / "manifest.json")
        if not skip_signature:
            check_signatures(manifest, self.trust_root())
        verify_artifact(model_dir / manifest.file, manifest)
        state = self.store.load()
        target = Slots.other(self.slots.active())
        self.slots.stage(target, model_dir / manifest.file, manifest)
        self._smoke_test(self.slots.path(target))
        self.slots.switch(target)
        self._sync_installed(state, target)
        state.pending = None
        self.store.save(state)
        assert state.installed is not None
        return state.installed


def _claimed_version(raw: dict[str, Any]) -> int:
    """The version an unverified manifest *claims* (for reporting a rejection only)."""
    value = raw.get("version") if isinstance(raw, dict) else None
    return value if isinstance(value, int) and value >= 0 else 0


__all__ = ["RollbackDirective", "UpdateReport", "Updater"]
