"""``edgescribe eval``: per-set CER/WER from a JSONL manifest; unreadable files skipped and counted."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from edgescribe.cli import UserError, main
from edgescribe.commands.evaluate import read_manifest
from edgescribe.samples import SAMPLES_MANIFEST, list_samples
from tests.models.runtime.model_under_test import model_dir_or_skip

DATA_DIR = Path(__file__).resolve().parents[1] / "data"


@pytest.fixture(scope="module")
def model_args() -> list[str]:
    return ["--model", str(model_dir_or_skip())]


def write_manifest(folder: Path, entries: list[dict[str, str]]) -> Path:
    path = folder / "eval.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in entries))
    return path


@pytest.fixture
def two_set_manifest(tmp_path: Path) -> Path:
    """Audio under a sub-folder, referenced relative to the manifest, in two sets, one bad file."""
    audio_dir = tmp_path / "clips"
    audio_dir.mkdir()
    entries = []
    for index, sample in enumerate(list_samples()):
        shutil.copy(sample.path, audio_dir / sample.path.name)
        entries.append(
            {"audio": f"clips/{sample.path.name}", "text": sample.text, "set": f"set{index % 2}"}
        )
    shutil.copy(DATA_DIR / "truncated.wav", audio_dir / "truncated.wav")
    entries.append({"audio": "clips/truncated.wav", "text": "lost words", "set": "set0"})
    return write_manifest(tmp_path, entries)


def test_json_report_has_model_and_fractions_per_set(
    model_args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(["eval", str(SAMPLES_MANIFEST), "--json", *model_args])

    out, err = capsys.readouterr()
    assert status == 0, err
    report = json.loads(out)
    assert set(report) >= {"model", "sets"}
    assert report["model"]["name"]
    assert report["model"]["version"] >= 1
    samples = report["sets"]["samples"]
    assert samples["n"] == len(list_samples())
    assert samples["cer"] >= 0.0  # fractions; insertions can push them past 1.0
    assert samples["wer"] >= 0.0
    assert report["skipped"] == 0


def test_unreadable_files_are_skipped_counted_and_named(
    model_args: list[str], two_set_manifest: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(["eval", str(two_set_manifest), "--json", *model_args])

    out, err = capsys.readouterr()
    assert status == 0
    report = json.loads(out)
    assert report["skipped"] == 1
    count = len(list_samples())
    assert report["sets"]["set0"]["n"] == (count + 1) // 2
    assert report["sets"]["set1"]["n"] == count // 2
    assert "truncated.wav: truncated" in err
    assert f"skipped 1 of {count + 1} unreadable files" in err


def test_table_lists_each_set_and_the_total(
    model_args: list[str], two_set_manifest: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["eval", str(two_set_manifest), *model_args]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("model ")
    assert lines[1].split() == ["set", "n", "CER", "WER"]
    assert [line.split()[0] for line in lines[2:]] == ["set0", "set1", "all"]
    assert lines[-1].split()[1] == str(len(list_samples()))
    assert all(line.split()[2].endswith("%") for line in lines[2:])


def test_limit_caps_each_set(
    model_args: list[str], two_set_manifest: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["eval", str(two_set_manifest), "--json", "--limit", "1", *model_args]) == 0
    sets = json.loads(capsys.readouterr().out)["sets"]
    assert {name: s["n"] for name, s in sets.items()} == {"set0": 1, "set1": 1}


def test_no_decodable_file_is_an_error_not_a_zero_score(
    model_args: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copy(DATA_DIR / "garbage.wav", tmp_path / "garbage.wav")
    manifest = write_manifest(tmp_path, [{"audio": "garbage.wav", "text": "x"}])
    assert main(["eval", str(manifest), *model_args]) == 2
    assert "none of the 1 files could be decoded" in capsys.readouterr().err


def test_malformed_manifest_line_names_its_line_number(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = tmp_path / "m.jsonl"
    manifest.write_text('{"audio": "a.wav", "text": "ok"}\n{"audio": "b.wav"\n')
    assert main(["eval", str(manifest), "--model", str(tmp_path)]) == 2
    assert "m.jsonl:2: not a manifest line" in capsys.readouterr().err


def test_reference_prefers_text_norm_and_paths_are_relative_to_the_manifest(
    tmp_path: Path,
) -> None:
    manifest = write_manifest(
        tmp_path,
        [
            {"audio": "a/x.wav", "text": "It's 5 o'clock!", "text_norm": "it's five o'clock"},
            {"audio": "y.wav", "text": "Plain text."},
        ],
    )
    items = read_manifest(manifest)
    assert [i.reference for i in items] == ["it's five o'clock", "Plain text."]
    assert items[0].audio == tmp_path / "a" / "x.wav"
    assert {i.set_name for i in items} == {"default"}


def test_empty_manifest_is_a_user_error(tmp_path: Path) -> None:
    manifest = tmp_path / "empty.jsonl"
    manifest.write_text("\n")
    with pytest.raises(UserError, match="lists no utterances"):
        read_manifest(manifest)
