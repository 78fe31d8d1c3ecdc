"""Greedy CTC decoding on constructed log-probs: words, times and confidences are exact."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from models.runtime.ctc import greedy_decode
from models.runtime.vocabulary import DEFAULT_VOCABULARY

VOCAB = DEFAULT_VOCABULARY
SHIFT = 0.03


def frames(symbols: str, *, confidence: float = 0.9) -> npt.NDArray[np.float32]:
    """One frame per character: '_' is blank, ' ' is space; each frame puts ``confidence``
    on its symbol and spreads the rest evenly over the other symbols."""
    rows = []
    for symbol in symbols:
        index = 0 if symbol == "_" else VOCAB.index(symbol)
        row = np.full(len(VOCAB), (1 - confidence) / (len(VOCAB) - 1))
        row[index] = confidence
        rows.append(np.log(row))
    return np.array(rows, dtype=np.float32).reshape(len(rows), len(VOCAB))


def test_repeats_collapse_and_blanks_separate_doubled_letters() -> None:
    result = greedy_decode(frames("hhe_ll_llo"), VOCAB, frame_shift=SHIFT)
    assert result.text == "hello"


def test_word_times_come_from_first_and_last_emitting_frames() -> None:
    #          0123456789
    symbols = "_hi__ _yo_"
    words = greedy_decode(frames(symbols), VOCAB, frame_shift=SHIFT).words

    assert [w.word for w in words] == ["hi", "yo"]
    assert [words[0].start, words[0].end] == pytest.approx([0.03, 0.09])
    assert [words[1].start, words[1].end] == pytest.approx([0.21, 0.27])


def test_time_offset_shifts_every_word() -> None:
    words = greedy_decode(frames("ab"), VOCAB, frame_shift=SHIFT, time_offset=20.0).words
    assert [words[0].start, words[0].end] == pytest.approx([20.0, 20.06])


def test_extra_spaces_never_make_empty_words() -> None:
    result = greedy_decode(frames("  a _ _  b  "), VOCAB, frame_shift=SHIFT)
    assert [w.word for w in result.words] == ["a", "b"]
    assert result.text == "a b"


def test_confidence_is_the_mean_posterior_of_emitting_frames() -> None:
    log_probs = np.concatenate([frames("o", confidence=0.9), frames("k", confidence=0.5)])
    (word,) = greedy_decode(log_probs, VOCAB, frame_shift=SHIFT).words
    assert word.word == "ok"
    assert word.confidence == pytest.approx(0.7, abs=1e-4)


def test_all_blank_or_no_frames_decode_to_nothing() -> None:
    assert greedy_decode(frames("____"), VOCAB, frame_shift=SHIFT).words == []
    empty = np.zeros((0, len(VOCAB)), dtype=np.float32)
    assert greedy_decode(empty, VOCAB, frame_shift=SHIFT).text == ""


def test_apostrophes_stay_inside_words() -> None:
    assert greedy_decode(frames("don't _go"), VOCAB, frame_shift=SHIFT).text == "don't go"


def test_vocabulary_size_mismatch_is_an_error_not_garbage() -> None:
    with pytest.raises(ValueError, match="vocabulary has 29"):
        greedy_decode(np.zeros((3, 30), dtype=np.float32), VOCAB, frame_shift=SHIFT)
