"""Jittered exponential back-off, so a fleet that lost the server does not return in lock-step.

"Full jitter" (AWS Architecture Blog, *Exponential Backoff And Jitter*): after the n-th consecutive
failure wait a uniformly random time in ``[0, min(cap, base * 2**n)]``. Success resets the count.
A thousand devices that lost the link at the same moment spread their retries over the whole
window instead of hammering the server together when it comes back.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    base_seconds: float = 1.0
    cap_seconds: float = 300.0
    rng: random.Random = field(default_factory=random.Random)
    failures: int = 0

    def next_delay(self) -> float:
        """Record one more failure and return how long to wait before the next try."""
        ceiling = min(self.cap_seconds, self.base_seconds * (2 ** min(self.failures, 30)))
        self.failures += 1
        return self.rng.uniform(0.0, ceiling)

    def reset(self) -> None:
        self.failures = 0


def jittered(seconds: float, rng: random.Random, spread: float = 0.1) -> float:
    """``seconds`` ± ``spread`` (a fraction), for poll intervals that should not align across devices."""
    return max(0.0, seconds * (1.0 + rng.uniform(-spread, spread)))
