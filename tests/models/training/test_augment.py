"""Augmentation does what its name says (SNR, speed, band limits) and never produces garbage."""

from __future__ import annotations

import numpy as np
import pytest

from models.training.augment import Augmenter, band_limit, change_speed, mix_at_snr

RNG = np.random.default_rng(0)


def _tone(seconds: float = 1.0, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(16_000 * seconds)) / 16_000
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.mark.parametrize("snr_db", [0.0, 10.0, 20.0])
def test_mix_at_snr_hits_the_requested_ratio(snr_db: float) -> None:
    speech = _tone()
    noise = RNG.standard_normal(len(speech)).astype(np.float32)
    mixed = mix_at_snr(speech, noise, snr_db)
    residual = mixed - speech
    measured = 10 * np.log10(np.mean(speech**2) / np.mean(residual**2))
    assert measured == pytest.approx(snr_db, abs=0.1)


def test_speed_perturbation_changes_duration_inversely() -> None:
    x = _tone(1.0)
    assert len(change_speed(x, 1.1)) == pytest.approx(len(x) / 1.1, rel=0.01)
    assert len(change_speed(x, 0.9)) == pytest.approx(len(x) / 0.9, rel=0.01)


def test_band_limit_removes_energy_above_the_new_nyquist() -> None:
    high = _tone(1.0, freq=6000.0)
    limited = band_limit(high, 8000)
    assert len(limited) == len(high)
    assert np.sqrt(np.mean(limited**2)) < 0.05 * np.sqrt(np.mean(high**2))


def test_augmenter_output_is_finite_and_bounded_for_every_chain() -> None:
    noises = [RNG.standard_normal(32_000).astype(np.float32)]
    augment = Augmenter(
        noises=noises, seed=1, p_speed=1, p_noise=1, p_reverb=1, p_band=0.5, p_clip=0.5
    )
    for _ in range(30):
        out = augment(_tone(0.8), babble_source=_tone(0.5, 220.0))
        assert np.isfinite(out).all()
        assert np.abs(out).max() <= 1.0
        assert len(out) > 0.8 * 16_000 * 0.85
