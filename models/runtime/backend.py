"""Inference backends: one interface from 16 kHz waveforms to per-utterance log-probs.

The transcriber (chunking, CTC decoding, transcript assembly) does not care where the acoustic
model runs: in this process with onnxruntime (Lambda, device, CLI) or on a Triton server (the
Triton backend lives with the cloud functions and implements the same protocol). Routing, batching
and fallback are a backend's business; the transcriber only calls :meth:`InferenceBackend.infer`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from models.runtime.session import AcousticModel
from models.runtime.transcript import Engine, ModelRef

#: Inputs shorter than this are zero-padded: convolutional front ends need a few frames of context,
#: and trailing silence decodes to blanks, so the padding adds no words.
MIN_INPUT_SAMPLES: Final = 1600


@runtime_checkable
class InferenceBackend(Protocol):
    """Override ``infer``: waveforms in, one trimmed [F_i, V] log-prob matrix per waveform out."""

    @property
    def engine(self) -> Engine: ...

    @property
    def model(self) -> ModelRef: ...

    def infer(self, batch: Sequence[npt.NDArray[np.float32]]) -> list[npt.NDArray[np.float32]]: ...


class OnnxRuntimeBackend:
    """Runs an :class:`AcousticModel` in this process, in padded batches of ``max_batch_size``."""

    def __init__(
        self,
        model: AcousticModel,
        engine: Engine = "onnxruntime-local",
        *,
        max_batch_size: int = 8,
    ) -> None:
        self.acoustic_model = model
        self.engine: Engine = engine
        self.model = ModelRef(name=model.manifest.name, version=model.manifest.version)
        self.max_batch_size = max(1, max_batch_size)

    def infer(self, batch: Sequence[npt.NDArray[np.float32]]) -> list[npt.NDArray[np.float32]]:
        results: list[npt.NDArray[np.float32]] = []
        for start in range(0, len(batch), self.max_batch_size):
            results.extend(self._infer_padded(batch[start : start + self.max_batch_size]))
        return results

    def _infer_padded(
        self, waveforms: Sequence[npt.NDArray[np.float32]]
    ) -> list[npt.NDArray[np.float32]]:
        audio, lengths = pad_batch(waveforms)
        log_probs, frame_counts = self.acoustic_model.log_probs(audio, lengths)
        return [log_probs[i, : int(frame_counts[i])] for i in range(len(waveforms))]


def pad_batch(
    waveforms: Sequence[npt.NDArray[np.float32]],
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """Right-pad 1-D waveforms with zeros into [B, T] float32 and their lengths as [B] int64."""
    arrays = [np.asarray(w, dtype=np.float32).reshape(-1) for w in waveforms]
    lengths = np.array([max(a.size, MIN_INPUT_SAMPLES) for a in arrays], dtype=np.int64)
    audio = np.zeros((len(arrays), int(lengths.max(initial=MIN_INPUT_SAMPLES))), dtype=np.float32)
    for row, array in enumerate(arrays):
        audio[row, : array.size] = array
    return audio, lengths
