"""The transcript: one schema, produced by every engine, consumed by every writer.

Defined once here (pydantic) and imported by the batch function, the API, Triton clients and the edge
agent, so a transcript looks the same whichever engine produced it; ``engine`` says which one did.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Engine = Literal["triton", "onnxruntime-cloud", "onnxruntime-edge", "onnxruntime-local"]


class Word(BaseModel):
    """A word with its time span (seconds from the start of the audio) and a 0..1 confidence."""

    model_config = ConfigDict(frozen=True)

    word: str
    start: float
    end: float
    confidence: float = Field(ge=0.0, le=1.0)


class Segment(BaseModel):
    """A stretch of speech (one chunk of long audio, or the whole clip)."""

    model_config = ConfigDict(frozen=True)

    start: float
    end: float
    text: str
    words: list[Word] = Field(default_factory=list)


class ModelRef(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    version: int


class AudioInfo(BaseModel):
    model_config = ConfigDict(frozen=True)

    duration: float
    sample_rate: int


class Timings(BaseModel):
    """Wall-clock seconds spent in each stage (for latency dashboards, not for billing)."""

    decode_audio: float = 0.0
    inference: float = 0.0
    total: float = 0.0


class Transcript(BaseModel):
    id: str
    text: str
    segments: list[Segment]
    model: ModelRef
    engine: Engine
    audio: AudioInfo
    timings: Timings = Field(default_factory=Timings)

    @property
    def words(self) -> list[Word]:
        return [word for segment in self.segments for word in segment.words]
