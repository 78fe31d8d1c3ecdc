"""The one interface callers use: audio in, :class:`Transcript` out.

Pipeline: split long audio at pauses (``chunking``) -> run the chunks through an inference backend
in batches (``backend``) -> greedy CTC decoding per chunk with word times shifted by the chunk's
start (``ctc``) -> one segment per chunk that holds words -> the transcript. The batch function,
the HTTP API, the edge agent and the CLI all call :meth:`Transcriber.transcribe`, so a transcript
has the same shape whichever engine produced it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

from edgescribe.settings import SAMPLE_RATE
from models.runtime.artifacts import released_model_dir
from models.runtime.audio import DecodedAudio
from models.runtime.backend import InferenceBackend, OnnxRuntimeBackend
from models.runtime.chunking import split_at_silences
from models.runtime.ctc import greedy_decode
from models.runtime.manifest import ModelManifest
from models.runtime.session import AcousticModel
from models.runtime.transcript import AudioInfo, Engine, Segment, Timings, Transcript

#: Chunks sent to the backend per call: enough to amortise a call, few enough to bound memory.
CHUNKS_PER_CALL: Final = 4


#: Peak amplitude below which a chunk holds no audible sound at all (about -80 dBFS). Such chunks
#: are not sent to the model: after per-utterance normalisation pure silence becomes an arbitrary
#: input the model was never trained on, and it can hallucinate a letter there.
DIGITAL_SILENCE_PEAK = 1e-4


def is_digital_silence(samples: npt.NDArray[np.float32]) -> bool:
    return samples.size == 0 or float(np.max(np.abs(samples))) < DIGITAL_SILENCE_PEAK


class Transcriber:
    """Chunking + inference + CTC decoding behind one call; holds no per-request state."""

    def __init__(
        self,
        backend: InferenceBackend,
        manifest: ModelManifest,
        max_chunk_seconds: float = 20.0,
    ) -> None:
        if manifest.sample_rate != SAMPLE_RATE:
            raise ValueError(
                f"model {manifest.name} v{manifest.version} expects {manifest.sample_rate} Hz; "
                f"the runtime feeds {SAMPLE_RATE} Hz"
            )
        self.backend = backend
        self.manifest = manifest
        self.max_chunk_seconds = max_chunk_seconds

    @classmethod
    def from_model_dir(
        cls,
        model_dir: Path | None = None,
        *,
        engine: Engine = "onnxruntime-local",
        intra_op_threads: int = 1,
    ) -> Transcriber:
        """Load (and verify) a model folder; default: the released edge model."""
        model = AcousticModel.load(
            model_dir if model_dir is not None else released_model_dir(),
            intra_op_threads=intra_op_threads,
        )
        return cls(OnnxRuntimeBackend(model, engine=engine), model.manifest)

    def transcribe(
        self, audio: DecodedAudio | npt.NDArray[np.float32], *, transcript_id: str
    ) -> Transcript:
        """Transcribe 16 kHz mono audio (a ``DecodedAudio`` or a float array in [-1, 1])."""
        started = time.perf_counter()
        if isinstance(audio, DecodedAudio):
            samples, duration = audio.samples, audio.duration
            source_rate, decode_seconds = audio.source_sample_rate, audio.decode_seconds
        else:
            samples = np.asarray(audio, dtype=np.float32)
            if samples.ndim != 1:
                raise ValueError(f"expected mono samples [T], got shape {samples.shape}")
            source_rate, decode_seconds = SAMPLE_RATE, 0.0
            duration = samples.size / SAMPLE_RATE

        chunks = [
            (start, end)
            for start, end in split_at_silences(
                samples, sample_rate=SAMPLE_RATE, max_chunk_seconds=self.max_chunk_seconds
            )
            if not is_digital_silence(samples[start:end])
        ]
        inference_seconds = 0.0
        segments: list[Segment] = []
        for first in range(0, len(chunks), CHUNKS_PER_CALL):
            group = chunks[first : first + CHUNKS_PER_CALL]
            inference_started = time.perf_counter()
            outputs = self.backend.infer([samples[start:end] for start, end in group])
            inference_seconds += time.perf_counter() - inference_started
            if len(outputs) != len(group):
                raise RuntimeError(
                    f"backend {self.backend.engine} returned {len(outputs)} results "
                    f"for {len(group)} chunks"
                )
            for (start, end), log_probs in zip(group, outputs, strict=True):
                segment = self._segment(log_probs, start, end)
                if segment is not None:
                    segments.append(segment)

        return Transcript(
            id=transcript_id,
            text=" ".join(segment.text for segment in segments),
            segments=segments,
            model=self.backend.model,
            engine=self.backend.engine,
            audio=AudioInfo(duration=round(duration, 3), sample_rate=source_rate),
            timings=Timings(
                decode_audio=round(decode_seconds, 4),
                inference=round(inference_seconds, 4),
                total=round(decode_seconds + time.perf_counter() - started, 4),
            ),
        )

    def _segment(self, log_probs: npt.NDArray[np.float32], start: int, end: int) -> Segment | None:
        decoded = greedy_decode(
            log_probs,
            self.manifest.vocabulary,
            frame_shift=self.manifest.frame_shift_seconds,
            time_offset=start / SAMPLE_RATE,
        )
        if not decoded.words:
            return None
        # Padding and frame rounding can put the last frame past the chunk: clamp to real audio.
        chunk_end = round(end / SAMPLE_RATE, 3)
        words = [
            word.model_copy(
                update={"start": min(word.start, chunk_end), "end": min(word.end, chunk_end)}
            )
            for word in decoded.words
        ]
        return Segment(start=words[0].start, end=words[-1].end, text=decoded.text, words=words)
