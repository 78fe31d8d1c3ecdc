"""The fallback composite and its circuit breaker, driven by a fake clock (no sleeping).

The primary backends here are fault injectors (a primary that raises, one that hangs until
released); the secondary is the real onnxruntime backend on the released model, so "the request
still gets an answer" means a real answer. The end-to-end version — a real Triton server killed
mid-load — is in tests/functions/inference/test_fallback_under_failure.py.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from models.runtime.backend import OnnxRuntimeBackend
from models.runtime.fallback import (
    CircuitBreaker,
    CircuitState,
    FallbackBackend,
    PrimaryTimeoutError,
)
from models.runtime.session import AcousticModel
from models.runtime.transcript import Engine, ModelRef

Waveforms = Sequence[npt.NDArray[np.float32]]


def state(breaker: CircuitBreaker) -> CircuitState:
    """Read through a call so mypy does not narrow the property between assertions."""
    return breaker.state


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FlakyPrimary:
    """Answers with the wrapped backend while ``healthy``; raises ConnectionError otherwise."""

    engine: Engine = "triton"

    def __init__(self, inner: OnnxRuntimeBackend) -> None:
        self.inner = inner
        self.model = ModelRef(name="edgescribe-cloud", version=99)
        self.healthy = True
        self.calls = 0

    def infer(self, batch: Waveforms) -> list[npt.NDArray[np.float32]]:
        self.calls += 1
        if not self.healthy:
            raise ConnectionError("connection refused by triton")
        return self.inner.infer(batch)


class HangingPrimary:
    """Never answers until the test releases it (a server that accepted and then stalled)."""

    engine: Engine = "triton"
    model = ModelRef(name="edgescribe-cloud", version=99)

    def __init__(self) -> None:
        self.release = threading.Event()

    def infer(self, batch: Waveforms) -> list[npt.NDArray[np.float32]]:
        self.release.wait(timeout=30)
        raise ConnectionError("stalled server finally hung up")


@pytest.fixture(scope="module")
def local_backend(model_dir: Path) -> OnnxRuntimeBackend:
    return OnnxRuntimeBackend(AcousticModel.load(model_dir), engine="onnxruntime-cloud")


@pytest.fixture
def clip() -> list[npt.NDArray[np.float32]]:
    rng = np.random.default_rng(7)
    return [(0.05 * rng.standard_normal(16_000)).astype(np.float32)]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def hanging() -> Iterator[HangingPrimary]:
    primary = HangingPrimary()
    yield primary
    primary.release.set()


# --- circuit breaker -------------------------------------------------------------------------


def test_breaker_opens_after_threshold_consecutive_failures(clock: FakeClock) -> None:
    breaker = CircuitBreaker(failure_threshold=3, reset_timeout=30, clock=clock)
    for _ in range(2):
        assert breaker.allow_request()
        breaker.record_failure()
    assert state(breaker) is CircuitState.CLOSED

    breaker.record_failure()

    assert state(breaker) is CircuitState.OPEN
    assert not breaker.allow_request()


def test_success_resets_the_consecutive_failure_count(clock: FakeClock) -> None:
    """Intermittent errors below the threshold must never open the breaker."""
    breaker = CircuitBreaker(failure_threshold=3, reset_timeout=30, clock=clock)
    for _ in range(10):
        breaker.record_failure()
        breaker.record_failure()
        breaker.record_success()
    assert state(breaker) is CircuitState.CLOSED


def test_open_breaker_turns_half_open_only_after_reset_timeout(clock: FakeClock) -> None:
    breaker = CircuitBreaker(failure_threshold=1, reset_timeout=30, clock=clock)
    breaker.record_failure()

    clock.advance(29.9)
    assert state(breaker) is CircuitState.OPEN
    clock.advance(0.1)
    assert state(breaker) is CircuitState.HALF_OPEN


def test_half_open_admits_exactly_one_probe(clock: FakeClock) -> None:
    """A recovering server must not be hit by every waiting caller at once."""
    breaker = CircuitBreaker(failure_threshold=1, reset_timeout=5, clock=clock)
    breaker.record_failure()
    clock.advance(5)

    assert breaker.allow_request()
    assert not breaker.allow_request()
    assert not breaker.allow_request()


def test_successful_probe_closes_the_breaker(clock: FakeClock) -> None:
    breaker = CircuitBreaker(failure_threshold=1, reset_timeout=5, clock=clock)
    breaker.record_failure()
    clock.advance(5)
    assert breaker.allow_request()

    breaker.record_success()

    assert state(breaker) is CircuitState.CLOSED
    assert breaker.allow_request()
    assert breaker.allow_request()


def test_failed_probe_reopens_and_restarts_the_timeout(clock: FakeClock) -> None:
    breaker = CircuitBreaker(failure_threshold=1, reset_timeout=5, clock=clock)
    breaker.record_failure()
    clock.advance(5)
    assert breaker.allow_request()

    breaker.record_failure("still down")

    assert state(breaker) is CircuitState.OPEN
    clock.advance(4.9)
    assert state(breaker) is CircuitState.OPEN
    clock.advance(0.1)
    assert state(breaker) is CircuitState.HALF_OPEN
    path = [(t.source, t.target) for t in breaker.transitions]
    assert path == [
        (CircuitState.CLOSED, CircuitState.OPEN),
        (CircuitState.OPEN, CircuitState.HALF_OPEN),
        (CircuitState.HALF_OPEN, CircuitState.OPEN),
        (CircuitState.OPEN, CircuitState.HALF_OPEN),
    ]
    assert "still down" in breaker.transitions[2].reason


@pytest.mark.parametrize(("threshold", "timeout"), [(0, 1.0), (1, 0.0)])
def test_breaker_refuses_nonsense_settings(threshold: int, timeout: float) -> None:
    with pytest.raises(ValueError, match="must be"):
        CircuitBreaker(failure_threshold=threshold, reset_timeout=timeout)


# --- fallback composite ------------------------------------------------------------------------


def test_healthy_primary_serves_and_is_recorded(
    local_backend: OnnxRuntimeBackend, clip: list[npt.NDArray[np.float32]], clock: FakeClock
) -> None:
    primary = FlakyPrimary(local_backend)
    backend = FallbackBackend(primary, local_backend, breaker=CircuitBreaker(clock=clock))

    outputs, engine = backend.infer_with_engine(clip)

    assert engine == "triton"
    assert backend.engine == "triton"
    assert backend.model == primary.model
    assert np.array_equal(outputs[0], local_backend.infer(clip)[0])


def test_failing_primary_never_fails_the_request(
    local_backend: OnnxRuntimeBackend, clip: list[npt.NDArray[np.float32]], clock: FakeClock
) -> None:
    primary = FlakyPrimary(local_backend)
    primary.healthy = False
    backend = FallbackBackend(primary, local_backend, breaker=CircuitBreaker(clock=clock))

    outputs = backend.infer(clip)

    assert backend.engine == "onnxruntime-cloud"
    assert backend.model == local_backend.model
    assert np.array_equal(outputs[0], local_backend.infer(clip)[0])
    assert isinstance(backend.last_primary_error, ConnectionError)


def test_open_breaker_skips_the_primary_until_the_probe_succeeds(
    local_backend: OnnxRuntimeBackend, clip: list[npt.NDArray[np.float32]], clock: FakeClock
) -> None:
    primary = FlakyPrimary(local_backend)
    primary.healthy = False
    breaker = CircuitBreaker(failure_threshold=2, reset_timeout=30, clock=clock)
    backend = FallbackBackend(primary, local_backend, breaker=breaker)

    for _ in range(5):
        backend.infer(clip)
    assert primary.calls == 2  # the breaker opened after two failures; three calls skipped it
    assert state(breaker) is CircuitState.OPEN

    primary.healthy = True
    clock.advance(30)
    backend.infer(clip)

    assert primary.calls == 3
    assert backend.engine == "triton"
    assert state(breaker) is CircuitState.CLOSED
    assert backend.served == {"onnxruntime-cloud": 5, "triton": 1}


def test_hung_primary_times_out_and_the_secondary_answers(
    local_backend: OnnxRuntimeBackend,
    clip: list[npt.NDArray[np.float32]],
    clock: FakeClock,
    hanging: HangingPrimary,
) -> None:
    backend = FallbackBackend(
        hanging, local_backend, timeout_seconds=0.2, breaker=CircuitBreaker(clock=clock)
    )

    outputs = backend.infer(clip)

    assert backend.engine == "onnxruntime-cloud"
    assert len(outputs) == 1
    assert isinstance(backend.last_primary_error, PrimaryTimeoutError)
    assert "did not answer within 0.2s" in str(backend.last_primary_error)
    backend.close()


def test_secondary_errors_propagate_because_there_is_no_one_left(
    local_backend: OnnxRuntimeBackend, clip: list[npt.NDArray[np.float32]], clock: FakeClock
) -> None:
    primary, secondary = FlakyPrimary(local_backend), FlakyPrimary(local_backend)
    primary.healthy = secondary.healthy = False
    backend = FallbackBackend(primary, secondary, breaker=CircuitBreaker(clock=clock))

    with pytest.raises(ConnectionError, match="connection refused"):
        backend.infer(clip)
    assert primary.calls == secondary.calls == 1


def test_engine_is_recorded_per_thread(
    local_backend: OnnxRuntimeBackend, clip: list[npt.NDArray[np.float32]], clock: FakeClock
) -> None:
    """Concurrent callers each read the engine that served *their* request."""
    primary = FlakyPrimary(local_backend)
    backend = FallbackBackend(primary, local_backend, breaker=CircuitBreaker(clock=clock))
    backend.infer(clip)  # this thread: triton
    seen: list[Engine] = []

    def other_thread() -> None:
        primary.healthy = False
        backend.infer(clip)
        seen.append(backend.engine)

    worker = threading.Thread(target=other_thread)
    worker.start()
    worker.join()

    assert seen == ["onnxruntime-cloud"]
    assert backend.engine == "triton"
