"""Split long audio into chunks the model can take, cutting in pauses rather than in words.

Rules:

- chunks are contiguous and cover every sample: ``chunks[0][0] == 0``, ``chunks[i][1] ==
  chunks[i + 1][0]``, ``chunks[-1][1] == len(samples)``. Nothing is ever dropped, silence included
  (a "silent" stretch may hold a quiet word);
- no chunk is longer than ``max_chunk_seconds``; audio that fits is one chunk;
- each cut lies in the last ``search_seconds`` before the limit, at the quietest point: the frame
  (30 ms, 10 ms hop) whose smoothed energy, in dB relative to the loudest frame of the clip, is
  lowest. Smoothing over ~150 ms prefers the middle of a pause to a short dip inside a word;
- the last chunk is never shorter than ``min_chunk_seconds`` (unless the whole clip is).

Memory stays O(n / hop) beyond the samples themselves: a four-hour upload is 230 M samples, and a
float64 copy or cumulative sum of it would need 1.8 GB more than a Lambda has.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np
import numpy.typing as npt

from edgescribe.settings import SAMPLE_RATE

HOP_SECONDS: Final = 0.010
HOPS_PER_FRAME: Final = 3
FRAME_SECONDS: Final = HOP_SECONDS * HOPS_PER_FRAME
SMOOTHING_FRAMES: Final = 15
SILENCE_FLOOR_DB: Final = -100.0


def split_at_silences(
    samples: npt.NDArray[Any],
    *,
    sample_rate: int = SAMPLE_RATE,
    max_chunk_seconds: float = 20.0,
    search_seconds: float | None = None,
    min_chunk_seconds: float = 1.0,
) -> list[tuple[int, int]]:
    """``(start_sample, end_sample)`` chunks of ``samples`` (see the module doc for the rules)."""
    total = int(np.asarray(samples).shape[0])
    max_len = int(max_chunk_seconds * sample_rate)
    if max_len <= 0:
        raise ValueError(f"max_chunk_seconds must be positive, got {max_chunk_seconds}")
    if total == 0:
        return []
    if total <= max_len:
        return [(0, total)]

    search_len = int(
        (search_seconds if search_seconds is not None else max_chunk_seconds / 4) * sample_rate
    )
    search_len = min(max(search_len, 1), max_len - 1)
    min_len = min(int(min_chunk_seconds * sample_rate), max_len // 2)
    hop = max(1, int(HOP_SECONDS * sample_rate))
    centre = hop * HOPS_PER_FRAME // 2
    energy_db = smoothed_energy_db(samples, sample_rate=sample_rate)

    chunks: list[tuple[int, int]] = []
    start = 0
    while total - start > max_len:
        window_end = min(start + max_len, total - min_len)
        window_start = max(start + max_len - search_len, start + 1)
        cut = _quietest_sample(energy_db, hop, centre, window_start, window_end)
        chunks.append((start, cut))
        start = cut
    chunks.append((start, total))
    return chunks


def smoothed_energy_db(
    samples: npt.NDArray[Any], *, sample_rate: int = SAMPLE_RATE
) -> npt.NDArray[np.float64]:
    """Per-hop frame RMS in dB relative to the loudest frame, smoothed; index i ~ sample i * hop."""
    signal = np.asarray(samples, dtype=np.float32)
    hop = max(1, int(HOP_SECONDS * sample_rate))
    count = 1 + (signal.size - 1) // hop
    # Sum of squares per hop without a squared copy of the signal (einsum accumulates in place),
    # then each frame sums HOPS_PER_FRAME consecutive hops (zeros past the end).
    whole = (signal.size // hop) * hop
    hop_energy = np.zeros(count + HOPS_PER_FRAME, dtype=np.float64)
    blocks = signal[:whole].reshape(-1, hop)
    hop_energy[: blocks.shape[0]] = np.einsum("ij,ij->i", blocks, blocks)
    if whole < signal.size:
        tail = signal[whole:]
        hop_energy[blocks.shape[0]] = float(np.dot(tail, tail))
    frame_energy = sum(hop_energy[k : k + count] for k in range(HOPS_PER_FRAME))
    rms = np.sqrt(frame_energy / (hop * HOPS_PER_FRAME))
    peak = float(rms.max(initial=0.0))
    if peak <= 0.0:
        return np.full(count, SILENCE_FLOOR_DB)
    db = 20.0 * np.log10(np.maximum(rms / peak, 10 ** (SILENCE_FLOOR_DB / 20)))
    kernel = np.ones(SMOOTHING_FRAMES) / SMOOTHING_FRAMES
    smoothed: npt.NDArray[np.float64] = np.convolve(db, kernel, mode="same")
    return smoothed


def _quietest_sample(
    energy_db: npt.NDArray[np.float64], hop: int, centre: int, window_start: int, window_end: int
) -> int:
    """The sample in [window_start, window_end] at the quietest frame's centre (latest on ties)."""
    first = -(-window_start // hop)  # ceil: the frame must start inside the window
    last = window_end // hop
    if last < first:
        return window_end
    window = energy_db[first : last + 1]
    quietest = first + int(len(window) - 1 - np.argmin(window[::-1]))
    return int(min(max(quietest * hop + centre, window_start), window_end))
