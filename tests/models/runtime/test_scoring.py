"""CER/WER: Levenshtein over normalised text, corpus totals over utterances."""

from __future__ import annotations

import pytest

from models.runtime.scoring import ErrorCounter, cer, edit_distance, wer


@pytest.mark.parametrize(
    ("ref", "hyp", "distance"),
    [
        ("kitten", "sitting", 3),
        ("", "abc", 3),
        ("abc", "", 3),
        ("same", "same", 0),
        ("ab", "ba", 2),
    ],
)
def test_edit_distance_is_levenshtein(ref: str, hyp: str, distance: int) -> None:
    assert edit_distance(ref, hyp) == distance
    assert edit_distance(hyp, ref) == distance


def test_formatting_differences_are_not_errors() -> None:
    assert cer("Call me at 5, OK?", "call me at five ok") == 0.0
    assert wer("It's   DONE.", "it's done") == 0.0


def test_word_error_rate_counts_substitutions_insertions_and_deletions() -> None:
    assert wer("turn the lights off", "turn lights of now") == pytest.approx(3 / 4)


def test_character_error_rate_counts_spaces() -> None:
    assert cer("a b", "ab") == pytest.approx(1 / 3)


def test_empty_reference_scores_zero_or_one() -> None:
    assert cer("", "") == 0.0
    assert wer("", "noise") == 1.0


def test_corpus_rate_weighs_utterances_by_length_not_equally() -> None:
    counter = ErrorCounter()
    counter.add(
        "one two three four five six seven eight nine ten",
        "one two three four five six seven eight nine ten",
    )
    counter.add("hi", "bye")
    assert counter.wer == pytest.approx(1 / 11)  # the mean of rates would say 0.5
    assert counter.utterances == 2
    metrics = counter.metrics()
    assert metrics.n == 2
    assert metrics.wer == pytest.approx(0.0909, abs=1e-4)


def test_merging_counters_adds_their_totals() -> None:
    a, b = ErrorCounter(), ErrorCounter()
    a.add("yes", "yes")
    b.add("no", "on")
    a.merge(b)
    assert (a.utterances, a.char_total, a.char_edits) == (2, 5, 2)
