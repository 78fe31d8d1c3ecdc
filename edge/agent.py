"""The agent loop: heartbeat → ask → update → flush, forever, backing off with jitter.

One *cycle* (``sync_once``):

1. **Heartbeat** — installed version, health, outbox depth, last error, and the outcome of the last
   update until it has been reported once (then it is marked reported in the state file).
2. **Ask** — ``GET /v1/devices/{id}/model?current=N``; a newer trust root in the reply is applied
   first (key rotation); ``none`` abandons a pending update the server no longer offers;
   ``update``/``rollback`` go to the ``Updater``.
3. **Flush** the outbox (offline transcripts, corrections).

Between cycles (``run``): a successful cycle waits the poll interval ±10 %; a transient failure
(no link, timeout, 5xx) or a rejected update waits a full-jitter exponential back-off, reset by the
next clean cycle. All waits go through the injected ``Clock``.
"""

from __future__ import annotations

import logging
import random
import threading
from dataclasses import dataclass
from typing import Any

from edge.backoff import Backoff, jittered
from edge.client import DeviceClient
from edge.clock import Clock, SystemClock
from edge.config import AGENT_VERSION, AgentConfig
from edge.errors import AgentError, RequestRejectedError, TransientError, UpdateRejectedError
from edge.logs import log_event
from edge.outbox import FlushResult, Kind, Outbox
from edge.state import UpdateOutcome
from edge.updater import HealthCheck, SmokeTest, Updater, UpdateReport

logger = logging.getLogger("edge.agent")


@dataclass(frozen=True)
class CycleResult:
    action: str
    update: UpdateReport | None
    flush: FlushResult | None

    @property
    def rejected(self) -> bool:
        outcome = self.update.outcome if self.update else None
        return outcome is not None and outcome.result in ("rejected", "reverted")


class Agent:
    def __init__(
        self,
        config: AgentConfig,
        *,
        clock: Clock | None = None,
        client: DeviceClient | None = None,
        rng: random.Random | None = None,
        smoke_test: SmokeTest | None = None,
        health_check: HealthCheck | None = None,
    ) -> None:
        self.config = config
        self.clock = clock or SystemClock()
        self.rng = rng or random.Random()  # noqa: S311 - jitter, not secrets
        self.client = client or DeviceClient(
            config.api_url,
            config.device_id,
            config.bearer_token,
            timeout_seconds=config.read_timeout_seconds,
        )
        self.updater = Updater(config, self.clock, smoke_test=smoke_test, health_check=health_check)
        self.outbox = Outbox(
            config.outbox_file, max_items=config.outbox_max_items, max_bytes=config.outbox_max_bytes
        )
        self.backoff = Backoff(
            base_seconds=config.backoff_base_seconds,
            cap_seconds=config.backoff_cap_seconds,
            rng=self.rng,
        )
        self._recovered = False

    def recover(self) -> None:
        """Settle whatever a crash left behind (idempotent; run before the first cycle)."""
        self.updater.recover()
        self._recovered = True

    # -- one cycle --------------------------------------------------------------------------------
    def sync_once(self) -> CycleResult:
        if not self._recovered:
            self.recover()
        self.heartbeat()
        state = self.updater.store.load()
        offer = self.client.get_model_offer(state.installed.version if state.installed else 0)
        if offer.trust_root is not None:
            try:
                self.updater.rotate_trust(offer.trust_root)
            except UpdateRejectedError as exc:
                log_event(logger, "trust-root-rejected", level=logging.WARNING, reason=str(exc))
        report: UpdateReport | None = None
        if offer.action == "none":
            self.updater.abandon_pending("the server no longer offers it")
        else:
            assert offer.manifest is not None
            assert offer.url is not None
            report = self.updater.apply(
                offer.action, offer.manifest, offer.url, offer.rollback_directive
            )
        flush = self.flush_outbox()
        return CycleResult(action=offer.action, update=report, flush=flush)

    def heartbeat_report(self) -> dict[str, Any]:
        """The heartbeat body (the API's ``HeartbeatReport``: version, health, queue_depth,
        last_error, agent_version). An unreported update outcome rides in ``last_error`` as one
        line, e.g. ``update v7 rejected [rollback ...]: version 7 is not newer than 8``."""
        state = self.updater.store.load()
        stats = self.outbox.stats()
        outcome = state.last_outcome
        unreported = outcome is not None and not outcome.reported
        error = state.last_error
        if unreported and outcome is not None and outcome.result != "installed":
            error = _outcome_line(outcome)
        if state.installed is None:
            health = "failing"
        elif error or (unreported and outcome is not None and outcome.result != "installed"):
            health = "degraded"
        else:
            health = "ok"
        return {
            "version": state.installed.version if state.installed else 0,
            "health": health,
            "queue_depth": stats.depth,
            "last_error": error,
            "agent_version": AGENT_VERSION,
        }

    def heartbeat(self) -> None:
        report = self.heartbeat_report()
        self.client.heartbeat(report)
        state = self.updater.store.load()
        if (state.last_outcome is not None and not state.last_outcome.reported) or state.last_error:
            if state.last_outcome is not None:
                state.last_outcome.reported = True
            state.last_error = None  # reported once; the next failure sets it again
            self.updater.store.save(state)

    def flush_outbox(self) -> FlushResult:
        result = self.outbox.flush(self._send, limit=self.config.outbox_batch)
        if result.sent or result.dead_lettered:
            log_event(
                logger,
                "outbox-flushed",
                sent=result.sent,
                dead_lettered=result.dead_lettered,
                remaining=result.remaining,
            )
        return result

    def _send(self, kind: Kind, payload: dict[str, Any], key: str) -> None:
        if kind == "correction":
            self.client.post_feedback(payload, key)
        else:
            self.client.post_edge_transcript(payload, key)

    # -- the loop ---------------------------------------------------------------------------------
    def run(self, stop: threading.Event | None = None, max_cycles: int | None = None) -> int:
        """Cycle until ``stop`` is set (or ``max_cycles`` ran). Returns the number of cycles."""
        stop = stop or threading.Event()
        cycles = 0
        while not stop.is_set() and (max_cycles is None or cycles < max_cycles):
            cycles += 1
            delay = self.run_cycle()
            if max_cycles is not None and cycles >= max_cycles:
                break
            self.clock.sleep(delay)
        return cycles

    def run_cycle(self) -> float:
        """One cycle with its error handling; returns how long to wait before the next."""
        try:
            result = self.sync_once()
        except TransientError as exc:
            delay = self.backoff.next_delay()
            self._note_error(exc, delay)
            return delay
        except (RequestRejectedError, AgentError) as exc:
            delay = self.backoff.next_delay()
            self._note_error(exc, delay)
            return delay
        if result.rejected or (result.flush is not None and result.flush.stopped_by):
            return self.backoff.next_delay()
        self.backoff.reset()
        return jittered(self.config.poll_interval_seconds, self.rng)

    def _note_error(self, exc: AgentError, delay: float) -> None:
        log_event(
            logger,
            "cycle-failed",
            level=logging.WARNING,
            error=type(exc).__name__,
            reason=str(exc),
            retry_in=round(delay, 2),
        )
        state = self.updater.store.load()
        state.last_error = f"{type(exc).__name__}: {exc}"[:500]
        self.updater.store.save(state)


def _outcome_line(outcome: UpdateOutcome) -> str:
    attack = f" [{outcome.attack}]" if outcome.attack else ""
    return f"{outcome.action} v{outcome.version} {outcome.result}{attack}: {outcome.reason}"[:1000]
