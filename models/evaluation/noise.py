"""Noisy versions of clean evaluation speech at a fixed signal-to-noise ratio, reproducibly.

Rules (each one is what makes two benchmark runs comparable):

1. the noise segment for an utterance depends only on the noise bank, the seed and the utterance's
   key, never on call order or on the SNR: every SNR of the noise curve adds *the same* noise to
   the same utterance, only louder, so the curve measures the SNR and nothing else;
2. SNR is the ratio of mean powers over the whole utterance: ``10 log10(P_speech / P_noise)``;
3. a mix whose peak would leave [-1, 1] is scaled down as a whole (speech and noise together), which
   keeps the SNR exact; clipping would add distortion the SNR does not describe;
4. noise shorter than the utterance is looped; an all-zero utterance has no defined SNR and is
   returned unchanged;
5. a segment must carry at least ``MIN_SEGMENT_POWER_RATIO`` of its clip's mean power: event
   recordings (a 0.3 s dog bark in 5 s of digital silence) are mostly silent, and scaling a silent
   stretch up to a target SNR would turn hiss into a blast or divide by zero. The start is drawn
   uniformly among the positions whose window qualifies (some always does: the loudest window of
   any length carries at least the clip's mean power).

Example::

    bank = NoiseBank.from_directory(Path("../shared/data/speech/noise"), seed=2026)
    noisy = bank.mix(samples, snr_db=10.0, key="an4_test/cen1-fash-b.wav")
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

from edgescribe.settings import SAMPLE_RATE

#: Background recordings are read from these file types.
NOISE_SUFFIXES: Final = frozenset({".wav", ".flac", ".ogg", ".mp3"})
#: Noise quieter than this (mean power) is silence, not noise: mixing it cannot reach any SNR.
MIN_NOISE_POWER: Final = 1e-10
MIN_SEGMENT_POWER_RATIO: Final = 0.25

Samples = npt.NDArray[np.float32]


class NoiseBankError(ValueError):
    """The noise folder is missing, empty, or holds only silent or undecodable files."""


def power(samples: Samples) -> float:
    """Mean power of a signal (0.0 for an empty one)."""
    if samples.size == 0:
        return 0.0
    return float(np.mean(np.square(samples, dtype=np.float64)))


def measured_snr_db(speech: Samples, noise: Samples) -> float:
    """The SNR in dB of ``speech`` against ``noise`` (the added part of a mix)."""
    return 10.0 * float(np.log10(power(speech) / power(noise)))


def mix_at_snr(speech: Samples, noise: Samples, snr_db: float) -> Samples:
    """``speech + k * noise`` with ``k`` set so the SNR is exactly ``snr_db`` (rules 2-4)."""
    speech = np.asarray(speech, dtype=np.float32)
    noise = np.asarray(noise, dtype=np.float32)
    if speech.ndim != 1 or noise.ndim != 1:
        raise ValueError(f"expected mono signals, got shapes {speech.shape} and {noise.shape}")
    speech_power = power(speech)
    if speech_power == 0.0:
        return speech.copy()
    if noise.size == 0 or power(noise) < MIN_NOISE_POWER:
        raise ValueError("the noise signal is silent; no gain reaches a finite SNR")
    if noise.size < speech.size:
        noise = np.tile(noise, -(-speech.size // noise.size))
    noise = noise[: speech.size]
    gain = float(np.sqrt(speech_power / (power(noise) * 10.0 ** (snr_db / 10.0))))
    mixed: npt.NDArray[np.float64] = speech.astype(np.float64) + gain * noise.astype(np.float64)
    peak = float(np.max(np.abs(mixed)))
    if peak > 1.0:
        mixed /= peak
    return mixed.astype(np.float32)


def stable_seed(seed: int, key: str) -> int:
    """A 64-bit seed from ``seed`` and a text key that is the same in every process and run.

    (Python's ``hash()`` of a string is salted per process, so it cannot be used here.)
    """
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


@dataclass(frozen=True)
class NoiseClip:
    name: str
    samples: Samples


class NoiseBank:
    """A set of background recordings and a seed; hands out one fixed noise segment per key."""

    def __init__(self, clips: Sequence[NoiseClip], *, seed: int = 0) -> None:
        usable = [clip for clip in clips if power(clip.samples) >= MIN_NOISE_POWER]
        if not usable:
            raise NoiseBankError("no usable noise: every clip is empty or silent")
        self.clips = sorted(usable, key=lambda clip: clip.name)  # order-independent of listing
        self.seed = seed
        self._energy = [
            np.concatenate(([0.0], np.cumsum(np.square(c.samples, dtype=np.float64))))
            for c in self.clips
        ]

    @classmethod
    def from_directory(cls, directory: Path, *, seed: int = 0) -> NoiseBank:
        """Decode every audio file in ``directory`` (not recursive) to 16 kHz mono."""
        from models.runtime.audio import AudioDecodeError, decode_audio

        if not directory.is_dir():
            raise NoiseBankError(f"{directory}: no such noise folder")
        clips: list[NoiseClip] = []
        problems: list[str] = []
        for path in sorted(directory.iterdir()):
            if path.suffix.lower() not in NOISE_SUFFIXES or not path.is_file():
                continue
            try:
                clips.append(NoiseClip(path.name, decode_audio(path).samples))
            except AudioDecodeError as exc:
                problems.append(str(exc))
        if not clips:
            detail = f" ({'; '.join(problems)})" if problems else ""
            raise NoiseBankError(f"{directory}: no decodable noise recordings{detail}")
        return cls(clips, seed=seed)

    def segment(self, length: int, key: str) -> tuple[str, Samples]:
        """The noise clip name and ``length`` samples of it chosen for ``key`` (rules 1 and 5)."""
        rng = np.random.default_rng(stable_seed(self.seed, key))
        index = int(rng.integers(len(self.clips)))
        clip = self.clips[index]
        samples = clip.samples
        if samples.size <= length:
            reps = -(-length // samples.size)
            return clip.name, np.tile(samples, reps)[:length]
        if length == 0:
            return clip.name, samples[:0]
        energy = self._energy[index]  # prefix sums of squares: window power in O(1)
        window_power = (energy[length:] - energy[:-length]) / length
        starts = np.flatnonzero(window_power >= MIN_SEGMENT_POWER_RATIO * power(samples))
        start = int(starts[rng.integers(starts.size)])
        return clip.name, samples[start : start + length]

    def mix(self, speech: Samples, *, snr_db: float, key: str) -> Samples:
        """``speech`` with this bank's noise for ``key`` at ``snr_db`` (rules 1-4)."""
        _, noise = self.segment(int(np.asarray(speech).size), key)
        return mix_at_snr(speech, noise, snr_db)

    @property
    def total_seconds(self) -> float:
        return sum(clip.samples.size for clip in self.clips) / SAMPLE_RATE
