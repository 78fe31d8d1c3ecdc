"""A primary backend guarded by a timeout and a circuit breaker, with a secondary behind it.

Used in the cloud as *Triton first, in-process onnxruntime if Triton is unhealthy* and on devices as
*cloud first, local model when offline*. The promise: **a request never fails because the primary
failed** — if the secondary can answer, the caller gets an answer. Rules, in order, per call:

1. If the breaker is *open* (the primary failed ``failure_threshold`` times in a row, less than
   ``reset_timeout`` seconds ago), skip the primary: the caller does not wait for a dead server.
2. Otherwise call the primary with a deadline (``timeout_seconds``). Any exception or a missed
   deadline counts as one failure; a success closes the breaker.
3. After ``reset_timeout`` the breaker is *half-open*: exactly one caller probes the primary while
   everyone else keeps using the secondary; the probe's outcome closes or re-opens the breaker.
4. Whatever the primary did, the secondary answers the request. Errors from the secondary
   propagate: it is the last resort, and its error is the real reason (e.g. bad input).

Which engine served is recorded per thread (:attr:`FallbackBackend.engine` and ``.model`` answer
for the calling thread's last request, which is what ``Transcriber`` reads into the transcript) and
counted in :attr:`FallbackBackend.served`.

Time comes from an injectable ``clock`` so tests drive the breaker with a fake one, no sleeping.
This module is torch-free and boto3-free: the edge agent imports it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeoutError
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from models.runtime.bucketing import FloatArray
from models.runtime.transcript import Engine, ModelRef

if TYPE_CHECKING:
    from models.runtime.backend import InferenceBackend

logger = logging.getLogger(__name__)

Clock = Callable[[], float]


class CircuitState(StrEnum):
    CLOSED = "closed"  # primary in use
    OPEN = "open"  # primary skipped until reset_timeout has passed
    HALF_OPEN = "half-open"  # one probe call allowed through


class PrimaryTimeoutError(TimeoutError):
    """The primary did not answer within the deadline (it may still be running)."""


@dataclass(frozen=True)
class Transition:
    at: float
    source: CircuitState
    target: CircuitState
    reason: str


class CircuitBreaker:
    """Closed -> open after ``failure_threshold`` consecutive failures; open -> half-open after
    ``reset_timeout`` seconds; half-open -> closed on a successful probe, -> open on a failed one.

    Thread-safe. ``allow_request`` must be paired with ``record_success`` or ``record_failure``.
    """

    def __init__(
        self,
        failure_threshold: int = 3,
        reset_timeout: float = 30.0,
        clock: Clock = time.monotonic,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError(f"failure_threshold must be >= 1, got {failure_threshold}")
        if reset_timeout <= 0:
            raise ValueError(f"reset_timeout must be positive, got {reset_timeout}")
        self.failure_threshold = failure_threshold
        self.reset_timeout = reset_timeout
        self._clock = clock
        self._lock = threading.Lock()
        self._state = CircuitState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._probe_in_flight = False
        self.transitions: list[Transition] = []

    @property
    def state(self) -> CircuitState:
        """The current state (an open breaker whose timeout has passed reads as half-open)."""
        with self._lock:
            self._advance()
            return self._state

    @property
    def consecutive_failures(self) -> int:
        with self._lock:
            return self._failures

    def allow_request(self) -> bool:
        """Whether this caller may try the primary now (half-open admits one probe at a time)."""
        with self._lock:
            self._advance()
            if self._state is CircuitState.CLOSED:
                return True
            if self._state is CircuitState.HALF_OPEN and not self._probe_in_flight:
                self._probe_in_flight = True
                return True
            return False

    def record_success(self) -> None:
        with self._lock:
            self._failures = 0
            self._probe_in_flight = False
            if self._state is not CircuitState.CLOSED:
                self._move(CircuitState.CLOSED, "primary answered")

    def record_failure(self, reason: str = "primary failed") -> None:
        with self._lock:
            self._failures += 1
            was_probe = self._probe_in_flight
            self._probe_in_flight = False
            if self._state is CircuitState.HALF_OPEN and was_probe:
                self._open(f"probe failed: {reason}")
            elif self._state is CircuitState.CLOSED and self._failures >= self.failure_threshold:
                self._open(f"{self._failures} consecutive failures, last: {reason}")

    def _advance(self) -> None:
        if (
            self._state is CircuitState.OPEN
            and self._clock() - self._opened_at >= self.reset_timeout
        ):
            self._move(CircuitState.HALF_OPEN, f"{self.reset_timeout:g}s since opening")

    def _open(self, reason: str) -> None:
        self._opened_at = self._clock()
        self._move(CircuitState.OPEN, reason)

    def _move(self, target: CircuitState, reason: str) -> None:
        transition = Transition(at=self._clock(), source=self._state, target=target, reason=reason)
        self.transitions.append(transition)
        self._state = target
        logger.warning("circuit breaker %s -> %s (%s)", transition.source, target, reason)


class FallbackBackend:
    """An ``InferenceBackend`` that tries ``primary`` (deadline + breaker), then ``secondary``."""

    def __init__(
        self,
        primary: InferenceBackend,
        secondary: InferenceBackend,
        *,
        timeout_seconds: float = 10.0,
        breaker: CircuitBreaker | None = None,
        max_primary_workers: int = 32,
    ) -> None:
        if timeout_seconds <= 0:
            raise ValueError(f"timeout_seconds must be positive, got {timeout_seconds}")
        self.primary = primary
        self.secondary = secondary
        self.timeout_seconds = timeout_seconds
        self.breaker = breaker or CircuitBreaker()
        # The primary runs on these threads so the caller can stop waiting at the deadline; a
        # timed-out call keeps its thread until the primary gives up (its own client timeout).
        self._executor = ThreadPoolExecutor(
            max_workers=max_primary_workers, thread_name_prefix="fallback-primary"
        )
        self._local = threading.local()
        self._served_lock = threading.Lock()
        self.served: Counter[Engine] = Counter()
        self.last_primary_error: BaseException | None = None

    @property
    def engine(self) -> Engine:
        """The engine that served this thread's most recent request (the primary's before any)."""
        engine: Engine = getattr(self._local, "engine", self.primary.engine)
        return engine

    @property
    def model(self) -> ModelRef:
        """The model that served this thread's most recent request (the primary's before any)."""
        model: ModelRef = getattr(self._local, "model", self.primary.model)
        return model

    def infer(self, batch: Sequence[FloatArray]) -> list[FloatArray]:
        outputs, _ = self.infer_with_engine(batch)
        return outputs

    def infer_with_engine(self, batch: Sequence[FloatArray]) -> tuple[list[FloatArray], Engine]:
        """Like ``infer``, and also say which engine answered."""
        if self.breaker.allow_request():
            try:
                outputs = self._call_primary(batch)
            except Exception as exc:  # any primary failure is a reason to fall back, never to fail
                self.last_primary_error = exc
                self.breaker.record_failure(f"{type(exc).__name__}: {exc}")
                logger.warning(
                    "primary %s failed, using %s: %s",
                    self.primary.engine,
                    self.secondary.engine,
                    exc,
                )
            else:
                self.breaker.record_success()
                return outputs, self._served_by(self.primary)
        outputs = self.secondary.infer(batch)
        return outputs, self._served_by(self.secondary)

    def close(self) -> None:
        """Stop accepting primary calls; do not wait for hung ones."""
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _call_primary(self, batch: Sequence[FloatArray]) -> list[FloatArray]:
        future = self._executor.submit(self.primary.infer, batch)
        try:
            return future.result(timeout=self.timeout_seconds)
        except FutureTimeoutError as exc:
            future.cancel()
            raise PrimaryTimeoutError(
                f"{self.primary.engine} did not answer within {self.timeout_seconds:g}s"
            ) from exc

    def _served_by(self, backend: InferenceBackend) -> Engine:
        engine = backend.engine
        self._local.engine = engine
        self._local.model = backend.model
        with self._served_lock:
            self.served[engine] += 1
        return engine
