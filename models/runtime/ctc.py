"""Greedy CTC decoding: per-frame log-probs -> words with times and confidences.

Rules (blank = index 0, as in the vocabulary contract):

- each frame's symbol is its argmax; runs of the same symbol collapse to one; blanks are dropped,
  so "a a <b> a" reads "aa";
- the space symbol separates words; leading, trailing and repeated spaces never make empty words;
- a word starts at the first frame of its first symbol and ends after the last frame of its last
  symbol: ``start = offset + first_frame * frame_shift``, ``end = offset + (last_frame + 1) *
  frame_shift`` (CTC emissions are spiky, so this is "when the model heard it", not a forced
  alignment);
- a word's confidence is the mean, over the frames that emitted its symbols, of the posterior of
  the emitted symbol (``exp`` of the max log-prob), so one doubtful letter lowers the whole word.

Example: frames ``h i <b> ␠ y o`` with frame shift 0.03 s decode to ``hi`` [0.00, 0.06] and
``yo`` [0.12, 0.18].
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from models.runtime.transcript import Word

BLANK_INDEX = 0
WORD_SEPARATOR = " "


@dataclass(frozen=True)
class CtcResult:
    """Decoded words (with times) and the text they join to."""

    words: list[Word] = field(default_factory=list)

    @property
    def text(self) -> str:
        return " ".join(word.word for word in self.words)


def greedy_decode(
    log_probs: npt.NDArray[np.float32],
    vocabulary: Sequence[str],
    *,
    frame_shift: float,
    time_offset: float = 0.0,
) -> CtcResult:
    """Decode one utterance's [F, V] log-probs (see the module doc for the rules)."""
    scores = np.asarray(log_probs, dtype=np.float32)
    if scores.ndim != 2:
        raise ValueError(f"expected log-probs [frames, vocab], got shape {scores.shape}")
    if scores.shape[0] == 0:
        return CtcResult()
    if scores.shape[1] != len(vocabulary):
        raise ValueError(
            f"log-probs have {scores.shape[1]} symbols per frame, vocabulary has {len(vocabulary)}"
        )
    best = scores.argmax(axis=1)
    posterior = np.exp(scores[np.arange(scores.shape[0]), best])

    words: list[Word] = []
    letters: list[str] = []
    emitting: list[int] = []  # frames whose argmax is one of the current word's symbols
    previous = BLANK_INDEX
    for frame, symbol_id in enumerate(best.tolist()):
        symbol = vocabulary[symbol_id] if symbol_id != BLANK_INDEX else ""
        if symbol == WORD_SEPARATOR:
            if letters:
                words.append(_word(letters, emitting, posterior, frame_shift, time_offset))
                letters, emitting = [], []
        elif symbol:
            if symbol_id != previous:
                letters.append(symbol)
            emitting.append(frame)
        previous = symbol_id
    if letters:
        words.append(_word(letters, emitting, posterior, frame_shift, time_offset))
    return CtcResult(words=words)


def _word(
    letters: list[str],
    frames: list[int],
    posterior: npt.NDArray[np.float32],
    frame_shift: float,
    time_offset: float,
) -> Word:
    confidence = float(np.clip(posterior[frames].mean(), 0.0, 1.0))
    return Word(
        word="".join(letters),
        start=round(time_offset + frames[0] * frame_shift, 3),
        end=round(time_offset + (frames[-1] + 1) * frame_shift, 3),
        confidence=round(confidence, 4),
    )
