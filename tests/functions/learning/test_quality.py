"""Quality assessment: honest corrections of a weak model pass, implausible ones are rejected with
the guardrail that caught them, and accepted ones are routed by how wrong the model was."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from functions.learning import quality
from functions.learning.quality import DEFAULT_POLICY, QualityPolicy, assess, words_changed
from functions.learning.records import Assessment
from models.runtime.scoring import cer
from tests.functions.learning.feedback_data import (
    HONEST_CORRECTIONS,
    LOOP_CLIP_CORRECTIONS,
    RANDOM_TEXTS,
    feedback_record,
)

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
GUARDRAILS = {
    quality.INVALID_ID,
    quality.INVALID_AUDIO_REF,
    quality.EMPTY_CORRECTION,
    quality.NO_WORDS,
    quality.TOO_LONG,
    quality.NO_TRANSCRIPT,
    quality.LENGTH_RATIO,
    quality.CER_TOO_HIGH,
    quality.TOO_MANY_EDITS,
    quality.TOO_MANY_WORDS_CHANGED,
}


def _assess(
    original: str | None,
    corrected: str,
    policy: QualityPolicy = DEFAULT_POLICY,
    *,
    audio: bool = True,
    audio_ref: str | None = None,
) -> Assessment:
    record = feedback_record(
        1, original=original, corrected=corrected, audio=audio, audio_ref=audio_ref
    )
    return assess(record, policy, NOW)


def test_a_misheard_word_split_into_fragments_is_one_plausible_fix_not_three_changes() -> None:
    verdict = _assess("the patient takes a mocks a sillin", "the patient takes amoxicillin")
    assert verdict.accepted, verdict.reason
    assert verdict.words_changed == 0.0
    assert verdict.route == "finetune"
    assert verdict.trainable
    assert verdict.cer == pytest.approx(
        cer("the patient takes amoxicillin", verdict.original_text or ""), abs=1e-4
    )
    assert verdict.assessed_at == NOW


@pytest.mark.parametrize(("original", "corrected"), HONEST_CORRECTIONS)
def test_honest_corrections_of_the_weak_released_model_are_accepted(
    original: str, corrected: str
) -> None:
    verdict = _assess(original, corrected)
    assert verdict.accepted, verdict.reason
    assert verdict.route == "finetune"
    # These are real misrecognitions: plain CER would call many of them implausible.
    assert verdict.cer is not None
    assert verdict.cer <= DEFAULT_POLICY.max_cer


def test_the_loop_can_learn_from_a_weak_model_most_honest_corrections_pass() -> None:
    """Every clip of the loop's domain set, as the released model transcribed it (CER 42-67 %)."""
    verdicts = [_assess(original, corrected) for original, corrected in LOOP_CLIP_CORRECTIONS]
    accepted = sum(verdict.accepted for verdict in verdicts)
    assert accepted >= 0.9 * len(verdicts)
    for verdict in verdicts:
        assert (
            verdict.accepted
            or quality.guardrail_of(verdict.reason) == quality.TOO_MANY_WORDS_CHANGED
        )


def test_a_correction_swapped_with_another_sentence_is_rejected() -> None:
    """Another utterance's text (a mix-up, or a poisoner reusing plausible sentences)."""
    carriers = [LOOP_CLIP_CORRECTIONS[i] for i in (0, 8, 16, 24)]  # four different sentences
    accepted = [
        (original, other)
        for i, (original, _) in enumerate(carriers)
        for j, (_, other) in enumerate(carriers)
        if i != j and _assess(original, other).accepted
    ]
    assert accepted == []


@pytest.mark.parametrize("text", RANDOM_TEXTS)
@pytest.mark.parametrize(("original", "_"), HONEST_CORRECTIONS)
def test_random_text_replacing_a_transcript_is_rejected(original: str, _: str, text: str) -> None:
    verdict = _assess(original, text)
    assert not verdict.accepted
    assert verdict.route is None
    assert not verdict.trainable
    assert quality.guardrail_of(verdict.reason) in {
        quality.TOO_MANY_WORDS_CHANGED,
        quality.CER_TOO_HIGH,
        quality.LENGTH_RATIO,
    }


def test_random_text_of_plausible_length_and_cer_is_caught_by_the_words_guardrail() -> None:
    verdict = _assess(
        "the pacsin paght som mat ti sean qwice an day",
        "the quick brown fox jumps over the lazy dog",
    )
    assert quality.guardrail_of(verdict.reason) == quality.TOO_MANY_WORDS_CHANGED
    assert verdict.words_changed is not None
    assert verdict.words_changed > 0.4
    assert verdict.cer is not None  # the numbers are recorded with the rejection


@pytest.mark.parametrize(
    ("corrected", "guardrail"),
    [
        ("", quality.EMPTY_CORRECTION),
        ("   \n\t", quality.EMPTY_CORRECTION),
        ("?!... ---", quality.NO_WORDS),
        ("你好世界", quality.NO_WORDS),
        ("the patient takes amoxicillin " * 20, quality.TOO_LONG),
        ("the", quality.LENGTH_RATIO),
        (
            "the patient takes amoxicillin twice a day and then again in the evening",
            quality.LENGTH_RATIO,
        ),
    ],
)
def test_non_text_and_out_of_proportion_corrections_are_rejected_with_their_guardrail(
    corrected: str, guardrail: str
) -> None:
    verdict = _assess("the patient takes a mocks a sillin", corrected)
    assert not verdict.accepted
    assert quality.guardrail_of(verdict.reason) == guardrail, verdict.reason


def test_a_correction_without_a_transcript_cannot_be_assessed_and_is_rejected() -> None:
    missing = _assess(None, "the patient takes amoxicillin")
    empty = _assess("  ...  ", "the patient takes amoxicillin")
    for verdict in (missing, empty):
        assert not verdict.accepted
        assert quality.guardrail_of(verdict.reason) == quality.NO_TRANSCRIPT
        assert verdict.cer is None


def test_cer_and_edit_caps_reject_rewrites_the_word_guardrail_would_let_through() -> None:
    strict = QualityPolicy(max_cer=0.2)
    verdict = _assess("the patient takes a mocks a sillin", "the patient takes amoxicillin", strict)
    assert quality.guardrail_of(verdict.reason) == quality.CER_TOO_HIGH
    few_edits = QualityPolicy(max_char_edits=3)
    verdict = _assess(
        "the patient takes a mocks a sillin", "the patient takes amoxicillin", few_edits
    )
    assert quality.guardrail_of(verdict.reason) == quality.TOO_MANY_EDITS


@pytest.mark.parametrize(
    ("field", "value"),
    [("tenant", "../other-tenant"), ("transcript_id", "a/b"), ("feedback_id", "..")],
)
def test_hostile_ids_in_a_stored_record_are_rejected(field: str, value: str) -> None:
    record = feedback_record(1, audio=False).model_copy(update={field: value})
    verdict = assess(record, DEFAULT_POLICY, NOW)
    assert not verdict.accepted
    assert quality.guardrail_of(verdict.reason) == quality.INVALID_ID


@pytest.mark.parametrize(
    "audio_ref",
    [
        "recordings/clinic-b/rec-0001.wav",  # another tenant's recording
        "recordings/clinic-a/../clinic-b/x.wav",
        "models/edgescribe-edge/1/model.onnx",
        "recordings/clinic-a/rec-0001.exe",
    ],
)
def test_audio_references_outside_the_tenants_recordings_are_rejected(audio_ref: str) -> None:
    verdict = _assess(*HONEST_CORRECTIONS[0], audio_ref=audio_ref)
    assert not verdict.accepted
    assert quality.guardrail_of(verdict.reason) == quality.INVALID_AUDIO_REF


def test_a_confirmed_or_nearly_right_transcript_goes_to_distillation() -> None:
    sentence = "please refill the lisinopril prescription before the end of the week"
    exact = _assess(sentence, sentence)
    one_letter = _assess(sentence.replace("week", "weak"), sentence)
    assert exact.accepted
    assert exact.route == "distill"
    assert exact.cer == 0.0
    assert one_letter.accepted
    assert one_letter.route == "distill"
    assert one_letter.cer is not None
    assert 0 < one_letter.cer <= DEFAULT_POLICY.distill_max_cer


def test_formatting_only_differences_are_not_model_errors() -> None:
    verdict = _assess(
        "the patient takes two pills", "The patient takes 2 pills!".replace("2", "two")
    )
    assert verdict.accepted
    assert verdict.route == "distill"
    assert verdict.cer == 0.0


def test_an_accepted_correction_without_audio_counts_but_is_not_trainable() -> None:
    verdict = _assess(*HONEST_CORRECTIONS[0], audio=False)
    assert verdict.accepted
    assert verdict.route == "finetune"
    assert not verdict.trainable
    assert verdict.audio_ref is None


@pytest.mark.parametrize(
    "changes",
    [
        {"max_words_changed": 1.5},
        {"distill_max_cer": -0.1},
        {"min_length_ratio": 0.0},
        {"max_length_ratio": 0.9},
        {"max_chars": 0},
    ],
)
def test_a_nonsensical_policy_is_refused_when_built(changes: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="QualityPolicy"):
        QualityPolicy(**changes)  # type: ignore[arg-type]


def test_words_changed_counts_new_words_of_the_correction() -> None:
    assert words_changed("a b c", "a b c") == 0.0
    assert words_changed("the cat sat", "the dog sat") == pytest.approx(1 / 3)
    assert words_changed("anything", "") == 0.0
    assert words_changed("", "brand new words") == 1.0


# The machine is shared with a training run: generation may be slow, which is not a failure.
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    original=st.one_of(st.none(), st.text(max_size=120)),
    corrected=st.text(max_size=500),
)
def test_any_text_gets_a_verdict_with_a_known_reason_never_an_exception(
    original: str | None, corrected: str
) -> None:
    verdict = _assess(original, corrected)
    if verdict.accepted:
        assert verdict.reason is None
        assert verdict.route in ("finetune", "distill")
        assert verdict.cer is not None
        assert verdict.words_changed is not None
        assert 0.0 <= verdict.words_changed <= DEFAULT_POLICY.max_words_changed
    else:
        assert quality.guardrail_of(verdict.reason) in GUARDRAILS, verdict.reason
