"""Manifest reading: per-set limits, clear errors with line numbers, honest data summaries."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from models.evaluation.manifests import (
    ManifestError,
    read_eval_manifest,
    summarize_manifest,
)


def write(path: Path, rows: Sequence[object]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_limit_applies_per_set_and_text_norm_is_the_reference(tmp_path: Path) -> None:
    rows = [{"audio": f"a/{i}.wav", "text": "Hi!", "text_norm": "hi", "set": "a"} for i in range(4)]
    rows += [{"audio": f"b/{i}.wav", "text": "yes", "set": "b"} for i in range(4)]
    items = read_eval_manifest(write(tmp_path / "m.jsonl", rows), limit=2)
    assert [(i.set_name, i.audio.name) for i in items] == [
        ("a", "0.wav"),
        ("a", "1.wav"),
        ("b", "0.wav"),
        ("b", "1.wav"),
    ]
    assert items[0].reference == "hi"
    assert items[0].audio.parent == tmp_path / "a"
    assert items[0].key == "a/a/0.wav"


def test_sets_filter_and_default_set_name(tmp_path: Path) -> None:
    path = write(tmp_path / "m.jsonl", [{"audio": "x.wav", "text": "x"}])
    assert read_eval_manifest(path)[0].set_name == "default"
    with pytest.raises(ManifestError, match="no utterances"):
        read_eval_manifest(path, sets=["cv_en_100"])


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("{not json", "not JSON"),
        ("[1, 2]", "JSON object"),
        ('{"audio": "x.wav"}', "'audio' and 'text'"),
        ('{"audio": 3, "text": "x"}', "'audio' and 'text'"),
    ],
)
def test_malformed_line_is_reported_with_its_number(tmp_path: Path, line: str, reason: str) -> None:
    path = tmp_path / "m.jsonl"
    path.write_text('{"audio": "ok.wav", "text": "fine"}\n\n' + line + "\n")
    with pytest.raises(ManifestError, match=rf"m\.jsonl:3: .*{reason}"):
        read_eval_manifest(path)


def test_missing_manifest_is_a_manifest_error(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="cannot read"):
        read_eval_manifest(tmp_path / "absent.jsonl")


def test_summary_counts_speakers_and_refuses_to_undercount_minutes(tmp_path: Path) -> None:
    rows = [
        {"audio": "1.wav", "text": "a", "set": "s", "speaker": "p1", "duration": 30.0},
        {"audio": "2.wav", "text": "b", "set": "s", "speaker": "p2", "duration": 30.0},
        {"audio": "3.wav", "text": "c", "set": "t", "speaker": "p1", "duration": 6.0},
        {"audio": "4.wav", "text": "d", "set": "t"},
    ]
    summary = {s.name: s for s in summarize_manifest(write(tmp_path / "m.jsonl", rows), "train")}
    assert summary["s"].utterances == 2
    assert summary["s"].minutes == 1.0
    assert summary["s"].speakers == 2
    assert summary["s"].role == "train"
    assert summary["t"].minutes is None  # one line lacks a duration


def test_summary_can_name_the_whole_manifest_as_one_set(tmp_path: Path) -> None:
    rows = [{"audio": "1.wav", "text": "a", "set": "synthetic", "duration": 60.0}]
    (only,) = summarize_manifest(
        write(tmp_path / "m.jsonl", rows), "synthetic-train", set_name="synth"
    )
    assert only.name == "synth"
    assert only.minutes == 1.0
