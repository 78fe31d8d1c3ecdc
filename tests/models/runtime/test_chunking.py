"""Chunking long audio: nothing dropped, limits kept, cuts land in pauses."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.runtime.chunking import split_at_silences
from tests.models.runtime.signals import sine

RATE = 16_000


def assert_covers_everything(chunks: list[tuple[int, int]], total: int) -> None:
    assert chunks[0][0] == 0
    assert chunks[-1][1] == total
    for (_, end), (start, _) in itertools.pairwise(chunks):
        assert end == start
    assert all(end > start for start, end in chunks)


@settings(max_examples=60, deadline=None)
@given(
    seconds=st.floats(min_value=0.01, max_value=95.0),
    max_chunk=st.floats(min_value=2.0, max_value=30.0),
    seed=st.integers(0, 2**16),
)
def test_chunks_never_drop_or_overlap_samples(seconds: float, max_chunk: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    samples = (rng.standard_normal(int(seconds * RATE)) * rng.uniform(0, 0.5)).astype(np.float32)
    chunks = split_at_silences(samples, max_chunk_seconds=max_chunk)

    assert_covers_everything(chunks, samples.size)
    assert all(end - start <= int(max_chunk * RATE) for start, end in chunks)


def test_short_audio_is_one_chunk_and_empty_audio_none() -> None:
    assert split_at_silences(np.zeros(RATE * 5, dtype=np.float32)) == [(0, RATE * 5)]
    assert split_at_silences(np.zeros(0, dtype=np.float32)) == []


def test_cuts_fall_in_the_pauses_between_speech() -> None:
    """Tone bursts of 6 s with 0.6 s pauses: every cut lies inside a pause."""
    burst, pause = sine(220.0, 6.0, RATE), np.zeros(int(0.6 * RATE), dtype=np.float32)
    samples = np.concatenate([burst, pause] * 8)
    period = burst.size + pause.size

    chunks = split_at_silences(samples, max_chunk_seconds=15.0)

    assert_covers_everything(chunks, samples.size)
    assert len(chunks) >= 4
    for _, cut in chunks[:-1]:
        assert cut % period >= burst.size, f"cut at {cut / RATE:.2f} s is inside a burst"


def test_no_pause_still_splits_within_the_limit() -> None:
    samples = sine(220.0, 50.0, RATE)
    chunks = split_at_silences(samples, max_chunk_seconds=20.0)
    assert_covers_everything(chunks, samples.size)
    assert all(end - start <= 20 * RATE for start, end in chunks)


def test_last_chunk_is_not_a_sliver() -> None:
    samples = sine(220.0, 20.05, RATE)
    chunks = split_at_silences(samples, max_chunk_seconds=20.0)
    assert chunks[-1][1] - chunks[-1][0] >= RATE


def test_nonpositive_limit_is_rejected() -> None:
    with pytest.raises(ValueError, match="positive"):
        split_at_silences(np.zeros(10, dtype=np.float32), max_chunk_seconds=0)
