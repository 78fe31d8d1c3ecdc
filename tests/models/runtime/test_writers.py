"""Transcript exporters: SRT/WebVTT cue numbering and clock formats, splitting, plain text, JSON."""

from __future__ import annotations

import itertools
import re

import pytest

from models.runtime.transcript import AudioInfo, ModelRef, Segment, Transcript, Word
from models.runtime.writers import build_cues, render, srt_time, vtt_time


def word(text: str, start: float, end: float) -> Word:
    return Word(word=text, start=start, end=end, confidence=0.9)


def transcript(*segments: Segment) -> Transcript:
    return Transcript(
        id="t1",
        text=" ".join(s.text for s in segments),
        segments=list(segments),
        model=ModelRef(name="edgescribe-edge", version=3),
        engine="onnxruntime-local",
        audio=AudioInfo(duration=3700.0, sample_rate=16_000),
    )


def segment(*words: Word) -> Segment:
    return Segment(
        start=words[0].start,
        end=words[-1].end,
        text=" ".join(w.word for w in words),
        words=list(words),
    )


TWO_SEGMENTS = transcript(
    segment(word("hello", 0.5, 0.9), word("world", 1.0, 1.4)),
    segment(word("second", 3661.25, 3661.7), word("part", 3661.8, 3662.0)),
)


def test_srt_numbers_cues_from_one_with_comma_milliseconds() -> None:
    assert render(TWO_SEGMENTS, "srt") == (
        "1\n00:00:00,500 --> 00:00:01,400\nhello world\n\n"
        "2\n01:01:01,250 --> 01:01:02,000\nsecond part\n\n"
    )


def test_vtt_has_header_and_dot_milliseconds() -> None:
    text = render(TWO_SEGMENTS, "vtt")
    assert text.startswith("WEBVTT\n\n")
    assert "1\n00:00:00.500 --> 00:00:01.400\nhello world\n" in text
    assert "2\n01:01:01.250 --> 01:01:02.000\nsecond part\n" in text
    assert "," not in "".join(re.findall(r"\d\d:\d\d:\d\d.\d\d\d", text))


@pytest.mark.parametrize(
    ("seconds", "srt", "vtt"),
    [
        (0.0, "00:00:00,000", "00:00:00.000"),
        (59.9996, "00:01:00,000", "00:01:00.000"),
        (3599.999, "00:59:59,999", "00:59:59.999"),
        (36_000.5, "10:00:00,500", "10:00:00.500"),
        (-0.2, "00:00:00,000", "00:00:00.000"),
    ],
)
def test_clock_formats_round_to_milliseconds(seconds: float, srt: str, vtt: str) -> None:
    assert srt_time(seconds) == srt
    assert vtt_time(seconds) == vtt


def test_long_segments_split_into_readable_cues() -> None:
    words = [word(f"word{i:02d}", i * 0.5, i * 0.5 + 0.4) for i in range(40)]  # 20 s, 280 chars
    cues = build_cues(transcript(segment(*words)))

    assert len(cues) > 1
    assert all(len(c.text) <= 42 for c in cues)
    assert all(c.end - c.start <= 7.0 for c in cues)
    assert " ".join(c.text for c in cues) == " ".join(w.word for w in words)
    assert all(a.end <= b.start for a, b in itertools.pairwise(cues))


def test_a_cue_never_has_zero_length() -> None:
    (cue,) = build_cues(transcript(segment(word("a", 2.0, 2.0))))
    assert cue.end > cue.start


def test_plain_text_is_one_line_per_segment() -> None:
    assert render(TWO_SEGMENTS, "txt") == "hello world\nsecond part\n"


def test_json_round_trips_to_the_same_transcript() -> None:
    text = render(TWO_SEGMENTS, "json")
    assert text.endswith("\n")
    assert text.count("\n") == 1
    assert Transcript.model_validate_json(text) == TWO_SEGMENTS


def test_empty_transcript_renders_valid_empty_documents() -> None:
    empty = transcript()
    assert render(empty, "srt") == ""
    assert render(empty, "vtt") == "WEBVTT\n\n"
    assert render(empty, "txt") == ""


def test_unknown_format_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown transcript format"):
        render(TWO_SEGMENTS, "docx")  # type: ignore[arg-type]
