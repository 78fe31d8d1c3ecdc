"""The python-backend model's batching logic, without Triton (the Triton tests run it for real).

``execute`` merges every request the dynamic batcher handed it into one onnxruntime call; these
tests pin the two ways that can go wrong: a malformed request poisoning its neighbours, and a
request getting frames that belong to a wider neighbour.
"""

from __future__ import annotations

import numpy as np
import pytest

from models.triton.python_model import (
    RequestError,
    RequestTensors,
    merge_requests,
    split_outputs,
    validate_request,
)


def request(rows: int, width: int, fill: float) -> RequestTensors:
    audio = np.full((rows, width), fill, dtype=np.float32)
    return validate_request(audio, np.full((rows, 1), width, dtype=np.int64))


def test_lengths_arrive_as_column_or_vector() -> None:
    audio = np.zeros((2, 100), dtype=np.float32)
    as_column = validate_request(audio, np.array([[100], [50]]))
    as_vector = validate_request(audio, np.array([100, 50]))
    assert as_column.lengths.tolist() == as_vector.lengths.tolist() == [100, 50]


@pytest.mark.parametrize(
    ("audio_shape", "lengths", "reason"),
    [
        ((100,), [100], r"must be \[batch, samples\]"),
        ((2, 100), [100], "1 values for 2 utterances"),
        ((1, 100), [101], r"must lie in 0\.\.100"),
        ((1, 100), [-1], r"must lie in 0\.\.100"),
    ],
)
def test_malformed_request_is_refused_with_its_reason(
    audio_shape: tuple[int, ...], lengths: list[int], reason: str
) -> None:
    with pytest.raises(RequestError, match=reason):
        validate_request(np.zeros(audio_shape, dtype=np.float32), np.array(lengths))


def test_merge_pads_narrower_requests_with_zeros_and_keeps_their_lengths() -> None:
    audio, lengths, rows = merge_requests([request(2, 4, 1.0), request(1, 6, 2.0)])

    assert audio.shape == (3, 6)
    assert audio[:2, 4:].sum() == 0
    assert audio[:2, :4].min() == 1.0
    assert audio[2].tolist() == [2.0] * 6
    assert lengths.tolist() == [4, 4, 6]
    assert rows == [2, 1]


def test_split_gives_each_request_its_own_rows_and_frame_width() -> None:
    requests = [request(2, 960, 0.0), request(1, 1920, 0.0)]
    log_probs = np.arange(3 * 4 * 2, dtype=np.float32).reshape(3, 4, 2)
    lengths = np.array([2, 1, 4], dtype=np.int64)

    parts = split_outputs(log_probs, lengths, requests, [2, 1], lambda n: n // 480)

    (first, first_lengths), (second, second_lengths) = parts
    assert first.shape == (2, 2, 2)
    assert first_lengths.tolist() == [2, 1]
    assert np.array_equal(first, log_probs[:2, :2])
    assert second.shape == (1, 4, 2)
    assert second_lengths.tolist() == [4]
    assert np.array_equal(second, log_probs[2:])
