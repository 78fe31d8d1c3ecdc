"""Character and word error rates, per utterance and over a corpus.

Both sides pass through :func:`models.runtime.vocabulary.normalize_text` first (lowercase, no
punctuation, digits spelled), so the score measures recognition, not formatting. CER counts the
spaces between words as characters (as jiwer and most ASR toolkits do).

Corpus rates are *sum of edits / sum of reference lengths* (what ``ErrorCounter`` keeps), not the
mean of per-utterance rates, which would let a one-word utterance weigh as much as a paragraph.
An empty reference scores 0.0 against an empty hypothesis and 1.0 against anything else.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from models.runtime.manifest import SetMetrics
from models.runtime.vocabulary import normalize_text


def edit_distance(reference: Sequence[str], hypothesis: Sequence[str]) -> int:
    """Levenshtein distance (substitutions + deletions + insertions), O(len(ref) * len(hyp))."""
    if len(reference) < len(hypothesis):
        reference, hypothesis = hypothesis, reference  # keep the row short
    previous = list(range(len(hypothesis) + 1))
    for i, ref_item in enumerate(reference, start=1):
        current = [i]
        for j, hyp_item in enumerate(hypothesis, start=1):
            current.append(
                min(
                    previous[j] + 1,  # deletion
                    current[j - 1] + 1,  # insertion
                    previous[j - 1] + (ref_item != hyp_item),  # substitution or match
                )
            )
        previous = current
    return previous[-1]


def _rate(edits: int, length: int) -> float:
    if length == 0:
        return 0.0 if edits == 0 else 1.0
    return edits / length


def cer(reference: str, hypothesis: str) -> float:
    ref, hyp = normalize_text(reference), normalize_text(hypothesis)
    return _rate(edit_distance(ref, hyp), len(ref))


def wer(reference: str, hypothesis: str) -> float:
    ref, hyp = normalize_text(reference).split(), normalize_text(hypothesis).split()
    return _rate(edit_distance(ref, hyp), len(ref))


@dataclass
class ErrorCounter:
    """Running corpus totals: add utterances, read ``cer`` / ``wer`` at any time."""

    utterances: int = 0
    char_edits: int = 0
    char_total: int = 0
    word_edits: int = 0
    word_total: int = 0

    def add(self, reference: str, hypothesis: str) -> None:
        ref, hyp = normalize_text(reference), normalize_text(hypothesis)
        self.utterances += 1
        self.char_edits += edit_distance(ref, hyp)
        self.char_total += len(ref)
        self.word_edits += edit_distance(ref.split(), hyp.split())
        self.word_total += len(ref.split())

    def merge(self, other: ErrorCounter) -> None:
        """Add another counter's totals (e.g. per-set counters into an overall one)."""
        self.utterances += other.utterances
        self.char_edits += other.char_edits
        self.char_total += other.char_total
        self.word_edits += other.word_edits
        self.word_total += other.word_total

    @property
    def cer(self) -> float:
        return _rate(self.char_edits, self.char_total)

    @property
    def wer(self) -> float:
        return _rate(self.word_edits, self.word_total)

    def metrics(self) -> SetMetrics:
        """The totals as the manifest's per-set metrics (fractions)."""
        return SetMetrics(n=self.utterances, cer=round(self.cer, 4), wer=round(self.wer, 4))
