"""A closed-loop load generator: N callers, each sending its next request when the last returns.

Closed loop is how a fleet of synchronous callers (API requests, batch workers) behaves: the
offered load is the concurrency, and throughput and latency are what the server makes of it.

Measurement rules (so short windows stay honest):

* callers start together (a barrier) and run through a warm-up period that is not recorded;
* a request counts if it *completes* inside the measurement window; throughput is those
  completions divided by the window length; percentiles are over their latencies;
* at the end of the window callers stop after their current request, and the generator waits for
  them, so no request of this point leaks into the next one;
* an exception is counted, never retried, and the first message is kept for the report.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

#: ``work(caller, turn)`` sends one request and returns the seconds of audio it carried.
Work = Callable[[int, int], float]


@dataclass
class LoadResult:
    concurrency: int
    window_seconds: float
    latencies: list[float] = field(default_factory=list)
    audio_seconds: float = 0.0
    errors: int = 0
    first_error: str | None = None

    @property
    def completed(self) -> int:
        return len(self.latencies)

    @property
    def throughput(self) -> float:
        """Completed requests per second of window."""
        return self.completed / self.window_seconds

    @property
    def realtime_factor(self) -> float:
        """Seconds of audio transcribed per wall-clock second."""
        return self.audio_seconds / self.window_seconds

    def percentile(self, q: float) -> float:
        return percentile(self.latencies, q)

    def merged(self, other: LoadResult) -> LoadResult:
        """Pool two windows of the same point (rounds run at different times average out
        background load that a single short window would catch or miss)."""
        if other.concurrency != self.concurrency:
            raise ValueError("only results at the same concurrency can be pooled")
        return LoadResult(
            concurrency=self.concurrency,
            window_seconds=self.window_seconds + other.window_seconds,
            latencies=[*self.latencies, *other.latencies],
            audio_seconds=self.audio_seconds + other.audio_seconds,
            errors=self.errors + other.errors,
            first_error=self.first_error or other.first_error,
        )


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def run_closed_loop(
    work: Work,
    concurrency: int,
    *,
    warmup_seconds: float,
    window_seconds: float,
    clock: Callable[[], float] = time.perf_counter,
) -> LoadResult:
    """Run ``concurrency`` callers of ``work`` for warm-up + window; measure the window."""
    if concurrency < 1 or window_seconds <= 0 or warmup_seconds < 0:
        raise ValueError("concurrency must be >= 1, window > 0 and warm-up >= 0 seconds")
    result = LoadResult(concurrency=concurrency, window_seconds=window_seconds)
    lock = threading.Lock()
    start = threading.Barrier(concurrency + 1)
    stop = threading.Event()
    bounds: dict[str, float] = {}

    def caller(index: int) -> None:
        start.wait()
        turn = 0
        while not stop.is_set():
            began = clock()
            try:
                audio = work(index, turn)
            except Exception as exc:  # counted and reported; a benchmark must not die mid-run
                with lock:
                    result.errors += 1
                    result.first_error = result.first_error or f"{type(exc).__name__}: {exc}"
                turn += 1
                continue
            ended = clock()
            turn += 1
            if bounds["open"] <= ended <= bounds["close"]:
                with lock:
                    result.latencies.append(ended - began)
                    result.audio_seconds += audio

    threads = [
        threading.Thread(target=caller, args=(i,), name=f"load-{i}", daemon=True)
        for i in range(concurrency)
    ]
    for thread in threads:
        thread.start()
    now = clock()
    bounds["open"] = now + warmup_seconds
    bounds["close"] = bounds["open"] + window_seconds
    start.wait()
    time.sleep(max(0.0, bounds["close"] - clock()))
    stop.set()
    for thread in threads:
        thread.join()
    return result
