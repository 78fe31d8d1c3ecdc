"""Polyphase resampling: exact rational ratios, lengths and pitch preserved."""

from __future__ import annotations

import pytest

from models.runtime.resample import rational_ratio, resample
from tests.models.runtime.signals import dominant_frequency, sine


@pytest.mark.parametrize(
    ("source", "up", "down"),
    [(44_100, 160, 441), (48_000, 1, 3), (8_000, 2, 1), (22_050, 320, 441), (11_025, 640, 441)],
)
def test_ratio_is_reduced_by_the_gcd(source: int, up: int, down: int) -> None:
    assert rational_ratio(source, 16_000) == (up, down)


def test_output_length_follows_the_ratio_exactly() -> None:
    assert resample(sine(300.0, 1.0, 44_100), 44_100, 16_000).size == 16_000
    assert resample(sine(300.0, 0.5, 8_000), 8_000, 16_000).size == 8_000


@pytest.mark.parametrize("source", [8_000, 11_025, 22_050, 32_000, 44_100, 48_000, 7_999])
def test_a_sine_keeps_its_frequency(source: int) -> None:
    out = resample(sine(1_234.0, 2.0, source), source, 16_000)
    assert dominant_frequency(out, 16_000) == pytest.approx(1_234.0, abs=2)


def test_same_rate_is_a_no_op() -> None:
    tone = sine(500.0, 0.1, 16_000)
    assert resample(tone, 16_000, 16_000) is tone


def test_nonpositive_rate_is_rejected() -> None:
    with pytest.raises(ValueError, match="positive"):
        rational_ratio(0, 16_000)
