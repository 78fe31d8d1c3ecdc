"""Quality assessment of one user correction: is it plausible, how wrong was the model, where it goes.

``assess`` is pure (no I/O, the clock is an argument): a ``FeedbackRecord`` in, an ``Assessment``
out, with the reason for every verdict. Guardrails run cheapest first and the first that fails is the
recorded reason, written as ``"<guardrail>: <numbers>"`` (``guardrail_of`` reads the name back, so
reports can count rejections by guardrail while the record keeps the numbers):

1. the ids are safe key components and ``audio_ref`` names a recording of the record's own tenant
   (a hand-written record must not point training at another tenant's audio);
2. the correction is not empty, has letters the model can learn (``normalize_text`` keeps a-z and
   apostrophes only) and is at most ``max_chars`` long;
3. there is a non-empty model transcript to compare with (without one nothing can be checked);
4. corrected and original lengths (normalized characters) are within ``[min, max]_length_ratio``;
5. CER of the transcript against the correction and its raw character edits are under their caps;
6. at most ``max_words_changed`` of the correction's words are *new* (see ``words_changed``).

Accepted corrections are routed by CER: above ``distill_max_cer`` the model was wrong and the
correction is a fine-tuning label (``finetune``); at or below it the model was right or nearly, so the
audio goes to the distillation set, where the cloud teacher labels it for the edge student. An
accepted correction without audio still counts for drift but is not ``trainable``.

Why "new words" rather than plain word edit distance: the released model misrecognizes a word it
does not know as sound-alike fragments ("the patient takes a mocks a sillin"), so a genuine
correction ("the patient takes amoxicillin") replaces three or four of its words, and on real speech
its CER is 17-60 %. Counted as word edits, nearly every honest correction of such a model would be
"implausible". What separates a correction from made-up text is that its words *sound like* what the
model heard: a misheard word keeps some of its letters at the same place in the character alignment,
a replaced one keeps none. Measured on the loop's domain clips (``edgescribe/samples/loop``; released
model CER 42-67 %): 30 of 32 honest corrections keep at least 60 % of their words, while unrelated text
(other sentences, "purple monkey dishwasher galaxy") keeps at most half and usually none.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

from functions.api.schemas import FeedbackRecord
from functions.learning.records import Assessment, Route
from models.runtime import storage_layout
from models.runtime.scoring import cer, edit_distance
from models.runtime.vocabulary import normalize_text

# Guardrail names: the part of a rejection reason before ": ".
INVALID_ID: Final = "invalid id"
INVALID_AUDIO_REF: Final = "invalid audio reference"
EMPTY_CORRECTION: Final = "empty correction"
NO_WORDS: Final = "no words"
TOO_LONG: Final = "correction too long"
NO_TRANSCRIPT: Final = "no transcript to compare"
LENGTH_RATIO: Final = "length ratio out of range"
CER_TOO_HIGH: Final = "character error rate too high"
TOO_MANY_EDITS: Final = "too many character edits"
TOO_MANY_WORDS_CHANGED: Final = "too many words changed"
#: Set by the ingest step, which sees more than one record.
DUPLICATE: Final = "duplicate"
MALFORMED: Final = "malformed feedback record"


@dataclass(frozen=True)
class QualityPolicy:
    """The thresholds of the guardrails and of routing; the defaults are argued per field."""

    #: Share of the correction's words that may be new (``words_changed``); the issue's 40 %.
    max_words_changed: float = 0.40
    #: A correction word is "kept" when more than this share of its letters align to the same
    #: letters of the transcript. A third: honest corrections of the loop clips keep 1/3-2/3 of a
    #: misheard word's letters; at 0.3 some unrelated sentences already pass.
    min_shared_letters: float = 1 / 3
    #: Longest correction (raw characters). About 30 s of speech: longer clips are not used for
    #: training anyway, and a long text is the cheapest way to poison a fine-tune.
    max_chars: int = 400
    #: Normalized corrected length / normalized transcript length. Outside [0.5, 2] the correction
    #: drops or invents half the utterance: not a correction of what was heard.
    min_length_ratio: float = 0.5
    max_length_ratio: float = 2.0
    #: CER of the transcript against the correction. Honest corrections of the released model reach
    #: 0.67 on the loop clips; above 0.8 nothing of the model's output survives in the correction.
    max_cer: float = 0.8
    #: Raw character edits: with ``max_chars`` and ``max_cer`` this bounds how much text one
    #: correction can rewrite (about 40 % of the longest allowed correction).
    max_char_edits: int = 160
    #: At or below this CER the model was right or nearly (one letter in fifty): distillation.
    distill_max_cer: float = 0.02

    def __post_init__(self) -> None:
        for name in ("max_words_changed", "min_shared_letters", "max_cer", "distill_max_cer"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"QualityPolicy.{name}={value} must be within [0, 1]")
        if not 0.0 < self.min_length_ratio <= 1.0 <= self.max_length_ratio:
            raise ValueError(
                "QualityPolicy length ratios must satisfy 0 < min_length_ratio <= 1 <= "
                f"max_length_ratio (got {self.min_length_ratio}, {self.max_length_ratio})"
            )
        if self.max_chars < 1 or self.max_char_edits < 1:
            raise ValueError("QualityPolicy.max_chars and max_char_edits must be positive")


DEFAULT_POLICY: Final = QualityPolicy()


@dataclass
class _Measured:
    """What the guardrails measured before one failed (kept in the assessment either way)."""

    cer: float | None = None
    words_changed: float | None = None


class _RejectedError(Exception):
    def __init__(self, guardrail: str, detail: str) -> None:
        super().__init__(f"{guardrail}: {detail}")
        self.reason = f"{guardrail}: {detail}"


def guardrail_of(reason: str | None) -> str | None:
    """The guardrail name of a rejection reason (``None`` for an accepted assessment)."""
    if reason is None:
        return None
    return reason.partition(": ")[0]


def assess(record: FeedbackRecord, policy: QualityPolicy, now: datetime) -> Assessment:
    """The verdict on one correction (the module docstring lists the guardrails, in order)."""
    measured = _Measured()
    try:
        _check(record, policy, measured)
    except _RejectedError as rejection:
        return _assessment(
            record,
            now,
            accepted=False,
            reason=rejection.reason,
            cer=measured.cer,
            words_changed=measured.words_changed,
        )
    error_rate = measured.cer
    assert error_rate is not None  # _check measured it before accepting
    route: Route = "distill" if error_rate <= policy.distill_max_cer else "finetune"
    return _assessment(
        record,
        now,
        accepted=True,
        reason=None,
        cer=error_rate,
        words_changed=measured.words_changed,
        route=route,
    )


def rejected(
    *,
    feedback_id: str,
    reason: str,
    received_at: datetime,
    now: datetime,
    record: FeedbackRecord | None = None,
    cer: float | None = None,
    words_changed: float | None = None,
) -> Assessment:
    """A rejection decided outside ``assess`` (a malformed record, a duplicate)."""
    if record is not None:
        return _assessment(
            record, now, accepted=False, reason=reason, cer=cer, words_changed=words_changed
        )
    return Assessment(
        feedback_id=feedback_id,
        tenant="",
        transcript_id="",
        audio_ref=None,
        original_text=None,
        corrected_text="",
        model=None,
        received_at=received_at,
        assessed_at=now,
        accepted=False,
        reason=reason,
    )


def words_changed(original: str, corrected: str, *, min_shared_letters: float = 1 / 3) -> float:
    """Share of the correction's words that are new: not a (mis)hearing of the transcript's words.

    Both texts are normalized and aligned character by character (minimum edit distance, spaces
    included, so a word the model split into fragments aligns with the fragments). A correction word
    is kept when more than ``min_shared_letters`` of its letters are aligned to the same letter of
    the transcript; the rest are new. Deleted transcript words do not count here (the length ratio
    guardrail bounds them). An empty correction has no new words.
    """
    hypothesis, reference = normalize_text(original), normalize_text(corrected)
    matched = _matched_characters(hypothesis, reference)
    words = 0
    new = 0
    letters = shared = 0
    for char, is_matched in zip([*reference, " "], [*matched, False], strict=True):
        if char != " ":
            letters += 1
            shared += is_matched
            continue
        if letters:
            words += 1
            new += shared <= min_shared_letters * letters
        letters = shared = 0
    return new / words if words else 0.0


def _check(record: FeedbackRecord, policy: QualityPolicy, measured: _Measured) -> None:
    _check_ids(record)
    corrected = record.corrected_text
    if not corrected.strip():
        raise _RejectedError(EMPTY_CORRECTION, "the corrected text is empty")
    normalized = normalize_text(corrected)
    if not any(char.isalpha() for char in normalized):
        raise _RejectedError(NO_WORDS, "the correction has no letters the model can learn (a-z)")
    if len(corrected) > policy.max_chars:
        raise _RejectedError(TOO_LONG, f"{len(corrected)} characters (limit {policy.max_chars})")
    if record.original_text is None:
        raise _RejectedError(NO_TRANSCRIPT, "the record has no original transcript text")
    original = normalize_text(record.original_text)
    if not original:
        raise _RejectedError(NO_TRANSCRIPT, "the model's transcript is empty")
    ratio = len(normalized) / len(original)
    if not policy.min_length_ratio <= ratio <= policy.max_length_ratio:
        raise _RejectedError(
            LENGTH_RATIO,
            f"the correction is {ratio:.2f} times the transcript's length "
            f"(allowed {policy.min_length_ratio}-{policy.max_length_ratio})",
        )
    measured.cer = error_rate = round(cer(corrected, record.original_text), 4)
    measured.words_changed = changed = round(
        words_changed(
            record.original_text, corrected, min_shared_letters=policy.min_shared_letters
        ),
        4,
    )
    if error_rate > policy.max_cer:
        raise _RejectedError(CER_TOO_HIGH, f"CER {error_rate:.1%} (limit {policy.max_cer:.0%})")
    edits = edit_distance(normalized, original)
    if edits > policy.max_char_edits:
        raise _RejectedError(TOO_MANY_EDITS, f"{edits} edits (limit {policy.max_char_edits})")
    if changed > policy.max_words_changed:
        raise _RejectedError(
            TOO_MANY_WORDS_CHANGED,
            f"{changed:.0%} of the correction's words are new, sharing at most "
            f"{policy.min_shared_letters:.0%} of their letters with the transcript "
            f"(limit {policy.max_words_changed:.0%})",
        )


def _check_ids(record: FeedbackRecord) -> None:
    try:
        storage_layout.validate_id(record.feedback_id, "feedback id")
        storage_layout.validate_id(record.tenant, "tenant")
        storage_layout.validate_id(record.transcript_id, "transcript id")
    except storage_layout.InvalidKeyError as exc:
        raise _RejectedError(INVALID_ID, str(exc)) from exc
    if record.audio_ref is None:
        return
    try:
        ref = storage_layout.parse_recording_key(record.audio_ref)
    except storage_layout.InvalidKeyError as exc:
        raise _RejectedError(INVALID_AUDIO_REF, str(exc)) from exc
    if ref.tenant != record.tenant:
        raise _RejectedError(
            INVALID_AUDIO_REF,
            f"{record.audio_ref!r} is not a recording of tenant {record.tenant!r}",
        )
    if ref.extension not in storage_layout.AUDIO_EXTENSIONS:
        raise _RejectedError(INVALID_AUDIO_REF, f"{record.audio_ref!r} is not an audio file")


def _matched_characters(hypothesis: str, reference: str) -> list[bool]:
    """For each character of ``reference``: is it aligned to an equal character of ``hypothesis``?

    A minimum-edit-distance alignment; on ties the backtrace prefers a match, then a substitution,
    so the result does not depend on which of several optimal paths a table happens to hold.
    """
    rows, cols = len(hypothesis), len(reference)
    table = [list(range(cols + 1))]
    for i in range(1, rows + 1):
        previous = table[-1]
        current = [i]
        for j in range(1, cols + 1):
            current.append(
                min(
                    previous[j] + 1,
                    current[j - 1] + 1,
                    previous[j - 1] + (hypothesis[i - 1] != reference[j - 1]),
                )
            )
        table.append(current)
    matched = [False] * cols
    i, j = rows, cols
    while i > 0 and j > 0:
        same = hypothesis[i - 1] == reference[j - 1]
        if table[i][j] == table[i - 1][j - 1] + (not same):
            matched[j - 1] = same
            i, j = i - 1, j - 1
        elif table[i][j] == table[i - 1][j] + 1:
            i -= 1
        else:
            j -= 1
    return matched


def _assessment(
    record: FeedbackRecord,
    now: datetime,
    *,
    accepted: bool,
    reason: str | None,
    cer: float | None,
    words_changed: float | None,
    route: Route | None = None,
) -> Assessment:
    return Assessment(
        feedback_id=record.feedback_id,
        tenant=record.tenant,
        transcript_id=record.transcript_id,
        audio_ref=record.audio_ref,
        original_text=record.original_text,
        corrected_text=record.corrected_text,
        model=record.model,
        received_at=record.received_at,
        assessed_at=now,
        accepted=accepted,
        reason=reason,
        cer=cer,
        words_changed=words_changed,
        route=route,
        trainable=accepted and record.audio_ref is not None,
    )
