"""Length buckets: same-bucket utterances get one shape; padding never changes true lengths."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.runtime.bucketing import (
    BucketingError,
    LengthBuckets,
    pad_to,
    trim_outputs,
)

BUCKETS = LengthBuckets(edges_seconds=(1.0, 2.0, 4.0), sample_rate=16_000)


def test_utterances_in_one_bucket_get_one_padded_length() -> None:
    """The property dynamic batching depends on: 2.2 s, 2.9 s and 4.0 s share the 4 s shape."""
    lengths = [35_200, 46_400, 64_000]
    assert {BUCKETS.bucket_samples(n) for n in lengths} == {64_000}


@given(st.integers(min_value=0, max_value=200_000))
def test_bucket_always_holds_the_utterance(n_samples: int) -> None:
    bucket = BUCKETS.bucket_samples(n_samples)
    assert bucket >= n_samples
    assert bucket in BUCKETS.edges_samples or bucket % 160_000 == 0


def test_longer_than_largest_edge_rounds_up_to_the_overflow_step() -> None:
    assert BUCKETS.bucket_samples(64_001) == 160_000
    assert BUCKETS.bucket_samples(160_001) == 320_000


def test_group_maps_indices_to_buckets_in_order() -> None:
    assert BUCKETS.group([100, 20_000, 15_000, 60_000]) == {
        16_000: [0, 2],
        32_000: [1],
        64_000: [3],
    }


def test_pad_keeps_samples_and_true_lengths() -> None:
    waveforms = [np.ones(10, dtype=np.float32), np.full(20_000, 0.5, dtype=np.float32)]
    padded = BUCKETS.pad(waveforms)

    assert padded.audio.shape == (2, 32_000)
    assert padded.audio.dtype == np.float32
    assert padded.lengths.tolist() == [10, 20_000]
    assert padded.audio[0, :10].tolist() == [1.0] * 10
    assert not padded.audio[0, 10:].any()
    assert np.array_equal(padded.audio[1, :20_000], waveforms[1])


@pytest.mark.parametrize(
    ("waveforms", "reason"),
    [
        ([], "empty batch"),
        ([np.zeros((2, 5), dtype=np.float32)], "must be 1-D"),
        ([np.zeros(50, dtype=np.float32)], "more than the 40 padded length"),
    ],
)
def test_pad_to_refuses_what_cannot_be_padded(
    waveforms: list[npt.NDArray[np.float32]], reason: str
) -> None:
    with pytest.raises(BucketingError, match=reason):
        pad_to(waveforms, 40)


@pytest.mark.parametrize(
    ("edges", "reason"),
    [((), "at least one"), ((2.0, 1.0), "strictly increasing"), ((0.0, 1.0), "positive")],
)
def test_bad_edges_are_refused(edges: tuple[float, ...], reason: str) -> None:
    with pytest.raises(BucketingError, match=reason):
        LengthBuckets(edges_seconds=edges)


def test_edges_round_trip_through_their_text_form() -> None:
    assert LengthBuckets.parse(BUCKETS.format()) == BUCKETS
    with pytest.raises(BucketingError, match="comma-separated seconds"):
        LengthBuckets.parse("1,two,4")


def test_trim_outputs_cuts_each_row_to_its_length() -> None:
    log_probs = np.arange(2 * 5 * 3, dtype=np.float32).reshape(2, 5, 3)
    trimmed = trim_outputs(log_probs, np.array([[5], [2]]))

    assert [t.shape for t in trimmed] == [(5, 3), (2, 3)]
    assert np.array_equal(trimmed[1], log_probs[1, :2])


def test_trim_outputs_refuses_lengths_the_output_cannot_hold() -> None:
    with pytest.raises(BucketingError, match=r"outside 0\.\.5 frames"):
        trim_outputs(np.zeros((1, 5, 3), dtype=np.float32), np.array([6]))
    with pytest.raises(BucketingError, match="shapes disagree"):
        trim_outputs(np.zeros((2, 5, 3), dtype=np.float32), np.array([5]))
