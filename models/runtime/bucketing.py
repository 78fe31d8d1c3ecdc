"""Length buckets: pad variable-length audio to a few fixed lengths so requests can share a batch.

Triton's dynamic batcher only merges requests whose input tensors have the same shape (unless the
model supports ragged batching, which our ONNX contract — a padded ``[batch, samples]`` tensor plus
``audio_lengths`` — does not). Raw utterances almost never share a length, so without bucketing
two concurrent requests of 3.1 s and 3.4 s would run one after the other. Padding each utterance
up to the next bucket edge (zeros, true length sent in ``audio_lengths``) makes most concurrent
requests identical in shape, and the batcher merges them.

Rules:

* An utterance is padded to the smallest edge that holds it. Longer than the largest edge, it is
  padded to a whole multiple of ``overflow_step_seconds`` (the transcriber chunks long audio, so
  this is the rare case, and it must still work).
* Padding never changes ``audio_lengths``: the model reads the true length and its output lengths
  (``log_prob_lengths``) say how many frames are real. Callers trim with them.
* The edges trade padding waste (compute spent on zeros, at most the gap to the next edge)
  against batching (fewer distinct shapes in the queue); see ``DEFAULT_BUCKET_SECONDS``.

This module is torch-free and boto3-free: the Triton clients, the in-process backend and the edge
router all use it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]

#: Bucket edges in seconds (16 kHz audio): doubling for short API clips, then the transcriber's
#: 20 s chunks (long recordings are cut near that length, so most chunks share one shape), then
#: 30 s (the synchronous API's cap). Coarse on purpose: Triton ends a batch at the first queued
#: request of another shape, so every extra edge splits concurrent traffic into smaller batches;
#: the price is padding (at most half a clip, about a quarter on average below 8 s).
DEFAULT_BUCKET_SECONDS: tuple[float, ...] = (2.0, 4.0, 8.0, 15.0, 20.0, 30.0)


class BucketingError(ValueError):
    """Bucket edges or a batch that cannot be padded (the message says which and why)."""


@dataclass(frozen=True)
class PaddedBatch:
    """Utterances padded to one shape: the model's ``audio`` and ``audio_lengths`` inputs."""

    audio: FloatArray  # float32 [batch, bucket_samples]
    lengths: IntArray  # int64 [batch]: true sample counts

    @property
    def bucket_samples(self) -> int:
        return int(self.audio.shape[1])


@dataclass(frozen=True)
class LengthBuckets:
    """A sorted set of padded lengths (seconds) at one sample rate."""

    edges_seconds: tuple[float, ...] = DEFAULT_BUCKET_SECONDS
    sample_rate: int = 16_000
    overflow_step_seconds: float = 10.0

    def __post_init__(self) -> None:
        if not self.edges_seconds:
            raise BucketingError("at least one bucket edge is needed")
        if any(edge <= 0 for edge in self.edges_seconds):
            raise BucketingError(f"bucket edges must be positive seconds: {self.edges_seconds}")
        if list(self.edges_seconds) != sorted(set(self.edges_seconds)):
            raise BucketingError(f"bucket edges must be strictly increasing: {self.edges_seconds}")
        if self.sample_rate <= 0 or self.overflow_step_seconds <= 0:
            raise BucketingError("sample_rate and overflow_step_seconds must be positive")

    @classmethod
    def parse(cls, text: str, sample_rate: int = 16_000) -> LengthBuckets:
        """Edges from ``"1,2,4,8"`` (how a Triton config parameter or an env var carries them)."""
        try:
            edges = tuple(float(part) for part in text.split(",") if part.strip())
        except ValueError as exc:
            raise BucketingError(
                f"bucket edges must be comma-separated seconds, got {text!r}"
            ) from exc
        return cls(edges_seconds=edges, sample_rate=sample_rate)

    def format(self) -> str:
        return ",".join(f"{edge:g}" for edge in self.edges_seconds)

    @property
    def edges_samples(self) -> tuple[int, ...]:
        return tuple(round(edge * self.sample_rate) for edge in self.edges_seconds)

    @property
    def max_samples(self) -> int:
        return self.edges_samples[-1]

    def bucket_samples(self, n_samples: int) -> int:
        """The padded length (samples) an utterance of ``n_samples`` is sent with."""
        if n_samples < 0:
            raise BucketingError(f"negative utterance length {n_samples}")
        for edge in self.edges_samples:
            if n_samples <= edge:
                return edge
        step = round(self.overflow_step_seconds * self.sample_rate)
        return step * math.ceil(n_samples / step)

    def priority(self, bucket_samples: int) -> int:
        """Triton priority level for a padded length: 1 for the shortest bucket, then 2, ...;
        ``len(edges) + 1`` for overflow lengths (see ``models.triton.spec.DynamicBatching``)."""
        for level, edge in enumerate(self.edges_samples, start=1):
            if bucket_samples <= edge:
                return level
        return len(self.edges_samples) + 1

    def group(self, lengths: Iterable[int]) -> dict[int, list[int]]:
        """Indices of utterances grouped by their bucket (each group is one same-shape request)."""
        groups: dict[int, list[int]] = {}
        for index, n_samples in enumerate(lengths):
            groups.setdefault(self.bucket_samples(n_samples), []).append(index)
        return groups

    def pad(self, waveforms: Sequence[FloatArray]) -> PaddedBatch:
        """Pad every waveform to the bucket of the longest one (zeros at the end)."""
        return pad_to(waveforms, self.bucket_samples(max((len(w) for w in waveforms), default=0)))


def pad_to(waveforms: Sequence[FloatArray], n_samples: int) -> PaddedBatch:
    """Stack 1-D waveforms into ``[batch, n_samples]`` float32, zero-padded, with true lengths."""
    if not waveforms:
        raise BucketingError("cannot pad an empty batch")
    audio = np.zeros((len(waveforms), n_samples), dtype=np.float32)
    lengths = np.zeros(len(waveforms), dtype=np.int64)
    for row, waveform in enumerate(waveforms):
        samples = np.asarray(waveform, dtype=np.float32)
        if samples.ndim != 1:
            raise BucketingError(
                f"utterance {row} must be 1-D mono samples, got shape {samples.shape}"
            )
        if samples.shape[0] > n_samples:
            raise BucketingError(
                f"utterance {row} has {samples.shape[0]} samples, "
                f"more than the {n_samples} padded length"
            )
        audio[row, : samples.shape[0]] = samples
        lengths[row] = samples.shape[0]
    return PaddedBatch(audio=audio, lengths=lengths)


def trim_outputs(log_probs: FloatArray, log_prob_lengths: IntArray) -> list[FloatArray]:
    """Split a ``[batch, frames, vocab]`` output into per-utterance ``[frames_i, vocab]`` arrays."""
    if log_probs.ndim != 3 or log_prob_lengths.reshape(-1).shape[0] != log_probs.shape[0]:
        raise BucketingError(
            f"model output shapes disagree: log_probs {log_probs.shape}, "
            f"log_prob_lengths {log_prob_lengths.shape}"
        )
    frames = log_probs.shape[1]
    result = []
    for row, length in enumerate(log_prob_lengths.reshape(-1)):
        n = int(length)
        if n < 0 or n > frames:
            raise BucketingError(f"utterance {row}: output length {n} outside 0..{frames} frames")
        result.append(np.ascontiguousarray(log_probs[row, :n]))
    return result
