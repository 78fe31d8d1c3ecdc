"""Transcript exporters: JSON, SubRip (SRT), WebVTT and plain text.

Subtitle rules: cues are numbered from 1; SRT times read ``HH:MM:SS,mmm`` and WebVTT times
``HH:MM:SS.mmm`` (after a ``WEBVTT`` header line). Each segment becomes one or more cues: words
are grouped greedily and a new cue starts before a line would pass ``MAX_CUE_CHARS`` characters or
a cue would pass ``MAX_CUE_SECONDS`` seconds, the usual limits for readable captions. A cue never
ends before it starts, and never with zero length (players drop those).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal, get_args

from models.runtime.transcript import Segment, Transcript

OutputFormat = Literal["json", "srt", "vtt", "txt"]
OUTPUT_FORMATS: Final[tuple[str, ...]] = get_args(OutputFormat)
MAX_CUE_SECONDS: Final = 7.0
MAX_CUE_CHARS: Final = 42
MIN_CUE_SECONDS: Final = 0.001


@dataclass(frozen=True)
class Cue:
    start: float
    end: float
    text: str


def render(transcript: Transcript, fmt: OutputFormat) -> str:
    """The transcript in ``fmt``; JSON is one compact line (newline-terminated)."""
    if fmt == "json":
        return transcript.model_dump_json() + "\n"
    if fmt == "txt":
        return "".join(f"{segment.text}\n" for segment in transcript.segments)
    if fmt == "srt":
        return render_srt(build_cues(transcript))
    if fmt == "vtt":
        return render_vtt(build_cues(transcript))
    raise ValueError(f"unknown transcript format {fmt!r}; expected one of {OUTPUT_FORMATS}")


def render_srt(cues: list[Cue]) -> str:
    return "".join(
        f"{number}\n{srt_time(cue.start)} --> {srt_time(cue.end)}\n{cue.text}\n\n"
        for number, cue in enumerate(cues, start=1)
    )


def render_vtt(cues: list[Cue]) -> str:
    body = "".join(
        f"{number}\n{vtt_time(cue.start)} --> {vtt_time(cue.end)}\n{cue.text}\n\n"
        for number, cue in enumerate(cues, start=1)
    )
    return f"WEBVTT\n\n{body}"


def srt_time(seconds: float) -> str:
    return _clock(seconds, ",")


def vtt_time(seconds: float) -> str:
    return _clock(seconds, ".")


def _clock(seconds: float, separator: str) -> str:
    total_ms = max(0, round(seconds * 1000))
    hours, rest = divmod(total_ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def build_cues(
    transcript: Transcript,
    *,
    max_seconds: float = MAX_CUE_SECONDS,
    max_chars: int = MAX_CUE_CHARS,
) -> list[Cue]:
    """Subtitle cues in time order (see the module doc for how segments are split)."""
    cues: list[Cue] = []
    for segment in transcript.segments:
        cues.extend(_segment_cues(segment, max_seconds, max_chars))
    return cues


def _segment_cues(segment: Segment, max_seconds: float, max_chars: int) -> list[Cue]:
    if not segment.words:  # an engine that gives text without word times: one cue
        return [_cue(segment.start, segment.end, segment.text)] if segment.text else []
    cues: list[Cue] = []
    words = [segment.words[0]]
    for word in segment.words[1:]:
        text_length = sum(len(w.word) for w in words) + len(words) + len(word.word)
        if text_length > max_chars or word.end - words[0].start > max_seconds:
            cues.append(_cue(words[0].start, words[-1].end, " ".join(w.word for w in words)))
            words = []
        words.append(word)
    cues.append(_cue(words[0].start, words[-1].end, " ".join(w.word for w in words)))
    return cues


def _cue(start: float, end: float, text: str) -> Cue:
    return Cue(start=start, end=max(end, start + MIN_CUE_SECONDS), text=text)
