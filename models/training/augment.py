"""On-the-fly waveform augmentation: noise at random SNR, reverb, speed, band limits, clipping.

Why: an 18-minute run on clean TTS reached ~5-10 % CER on unseen synthetic voices but 76 % on real
speech (measured-facts.md). Real rooms, microphones and phone codecs are the gap, so every training
example is drawn through a random chain of the distortions real audio suffers. SpecAugment (feature
masking) lives in the model (``architecture.SpecAugment``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from math import gcd
from typing import cast

import numpy as np
import numpy.typing as npt
from scipy.signal import fftconvolve, lfilter, resample_poly

from models.runtime.resample import resample

SR = 16_000

Audio = npt.NDArray[np.float32]


def mix_at_snr(speech: Audio, noise: Audio, snr_db: float) -> Audio:
    """``speech + k*noise`` with k chosen so the speech-to-noise power ratio is ``snr_db``."""
    if len(noise) < len(speech):
        noise = np.tile(noise, int(np.ceil(len(speech) / max(1, len(noise)))))
    noise = noise[: len(speech)]
    p_speech = float(np.mean(speech**2)) + 1e-10
    p_noise = float(np.mean(noise**2)) + 1e-10
    k = np.sqrt(p_speech / (p_noise * 10 ** (snr_db / 10)))
    return cast(Audio, (speech + k * noise).astype(np.float32))


def coloured_noise(rng: np.random.Generator, n: int, colour: str) -> Audio:
    white = rng.standard_normal(n).astype(np.float32)
    if colour == "white":
        return white
    if colour == "pink":  # Paul Kellet's economy filter approximation
        return cast(
            Audio,
            lfilter(
                [0.049922035, -0.095993537, 0.050612699, -0.004408786],
                [1, -2.494956002, 2.017265875, -0.522189400],
                white,
            ).astype(np.float32),
        )
    if colour == "brown":
        brown = np.cumsum(white)
        brown -= np.linspace(brown[0], brown[-1], n)
        return brown.astype(np.float32)
    raise ValueError(colour)


def hum(rng: np.random.Generator, n: int) -> Audio:
    base = rng.choice([50.0, 60.0])
    t = np.arange(n) / SR
    return cast(
        Audio, sum(np.sin(2 * np.pi * base * h * t) / h for h in range(1, 6)).astype(np.float32)
    )


def tones(rng: np.random.Generator, n: int) -> Audio:
    """Music-like: a few sustained notes with harmonics."""
    t = np.arange(n) / SR
    out = np.zeros(n, dtype=np.float32)
    for _ in range(rng.integers(2, 5)):
        f = 110 * 2 ** (rng.integers(0, 36) / 12)
        out += np.sin(2 * np.pi * f * t + rng.random() * 6).astype(np.float32) * rng.random()
    return out


def room_impulse(rng: np.random.Generator) -> Audio:
    rt60 = rng.uniform(0.15, 0.7)
    n = int(rt60 * SR)
    decay = np.exp(-6.9 * np.arange(n) / n)
    ir = rng.standard_normal(n) * decay
    ir[0] = 1.0
    return cast(Audio, (ir / np.sqrt(np.sum(ir**2))).astype(np.float32))


def change_speed(x: Audio, factor: float) -> Audio:
    """Speed perturbation (tempo and pitch together), as Kaldi's 0.9/1.0/1.1 recipe."""
    up, down = 100, round(100 * factor)
    g = gcd(up, down)
    return cast(Audio, resample_poly(x, up // g, down // g).astype(np.float32))


def band_limit(x: Audio, rate: int) -> Audio:
    """Telephone / low-rate codec: down to ``rate`` and back up."""
    return resample(resample(x, SR, rate), rate, SR)[: len(x)]


@dataclass
class Augmenter:
    """A random chain of distortions; ``noises`` are real background recordings (16 kHz float32)."""

    noises: list[Audio] = field(default_factory=list)
    seed: int = 0
    p_speed: float = 0.5
    p_noise: float = 0.6
    p_reverb: float = 0.25
    p_band: float = 0.15
    p_clip: float = 0.05

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.seed)

    def noise_for(self, n: int, babble_source: Audio | None) -> Audio:
        rng = self.rng
        kind = rng.choice(
            ["real", "white", "pink", "brown", "hum", "tones", "babble"],
            p=[0.4, 0.1, 0.15, 0.1, 0.05, 0.05, 0.15],
        )
        if kind == "real" and self.noises:
            src = self.noises[rng.integers(len(self.noises))]
            start = rng.integers(0, max(1, len(src) - n))
            return src[start : start + n]
        if kind == "babble" and babble_source is not None and len(babble_source) > 0:
            return babble_source
        if kind in ("white", "pink", "brown"):
            return coloured_noise(rng, n, str(kind))
        if kind == "hum":
            return hum(rng, n)
        return tones(rng, n)

    def __call__(self, x: Audio, babble_source: Audio | None = None) -> Audio:
        rng = self.rng
        if rng.random() < self.p_speed:
            x = change_speed(x, float(rng.choice([0.9, 1.1])))
        if rng.random() < self.p_reverb:
            x = fftconvolve(x, room_impulse(rng))[: len(x)].astype(np.float32)
        if rng.random() < self.p_noise:
            snr = float(rng.uniform(0, 30)) if rng.random() < 0.5 else float(rng.uniform(10, 30))
            x = mix_at_snr(x, self.noise_for(len(x), babble_source), snr)
        if rng.random() < self.p_band:
            x = band_limit(x, int(rng.choice([8000, 11025])))
        peak = float(np.abs(x).max()) + 1e-9
        x = x / peak * float(rng.uniform(0.1, 0.95))
        if rng.random() < self.p_clip:
            x = np.clip(x * rng.uniform(1.5, 4.0), -0.95, 0.95)
        return x.astype(np.float32)
