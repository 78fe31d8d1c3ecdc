"""Sample-rate conversion to the model's 16 kHz with a polyphase filter.

Why polyphase (``scipy.signal.resample_poly``) and not FFT resampling or linear interpolation:
it applies a proper anti-aliasing low-pass filter (so 44.1 kHz music-band energy above 8 kHz does
not fold back into the speech band), works on any length without the ringing an FFT resampler
puts at the edges, and costs O(n) for rational ratios. The ratio is reduced by the gcd, so
44 100 -> 16 000 is up 160 / down 441.
"""

from __future__ import annotations

from math import gcd
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.signal import resample_poly


def rational_ratio(source_rate: int, target_rate: int) -> tuple[int, int]:
    """``(up, down)`` with ``source_rate * up / down == target_rate``, reduced by their gcd."""
    if source_rate <= 0 or target_rate <= 0:
        raise ValueError(f"sample rates must be positive, got {source_rate} -> {target_rate}")
    divisor = gcd(source_rate, target_rate)
    return target_rate // divisor, source_rate // divisor


def resample(
    samples: npt.NDArray[Any], source_rate: int, target_rate: int
) -> npt.NDArray[np.float32]:
    """Resample a 1-D float signal; returns float32 (a copy only when the rate changes)."""
    signal = np.asarray(samples, dtype=np.float32)
    if source_rate == target_rate or signal.size == 0:
        return signal
    up, down = rational_ratio(source_rate, target_rate)
    return np.asarray(resample_poly(signal, up, down), dtype=np.float32)
