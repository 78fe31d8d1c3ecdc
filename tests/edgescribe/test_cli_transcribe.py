"""``edgescribe transcribe``: formats on stdout, files on disk, bad files reported without tracebacks."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edgescribe.cli import main
from edgescribe.progress import ProgressBar
from edgescribe.samples import list_samples
from models.runtime.transcript import Transcript
from tests.models.runtime.model_under_test import model_dir_or_skip

REPO_ROOT = Path(__file__).resolve().parents[2]
DATA_DIR = REPO_ROOT / "tests" / "data"


@pytest.fixture(scope="module")
def model_args() -> list[str]:
    return ["--model", str(model_dir_or_skip())]


def test_json_is_one_transcript_per_line_per_file(
    model_args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    paths = [str(s.path) for s in list_samples()[:3]]

    status = main(["transcribe", *paths, *model_args])

    out, err = capsys.readouterr()
    assert status == 0, err
    lines = out.splitlines()
    assert len(lines) == 3
    transcripts = [Transcript.model_validate_json(line) for line in lines]
    assert [t.id for t in transcripts] == [Path(p).name for p in paths]
    assert err == ""  # no progress bar when stderr is not a terminal


@pytest.mark.parametrize(("fmt", "first_line"), [("vtt", "WEBVTT"), ("srt", None), ("txt", None)])
def test_subtitle_and_text_formats(
    fmt: str, first_line: str | None, model_args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(["transcribe", str(list_samples()[0].path), "--format", fmt, *model_args])
    out, _ = capsys.readouterr()
    assert status == 0
    if first_line:
        assert out.splitlines()[0] == first_line
    assert not out.startswith("{")


def test_output_dir_gets_one_file_per_input(
    model_args: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sample = list_samples()[2]
    status = main(
        [
            "transcribe",
            str(sample.path),
            "--format",
            "srt",
            "--output-dir",
            str(tmp_path),
            *model_args,
        ]
    )
    assert status == 0
    assert capsys.readouterr().out == ""
    assert (tmp_path / f"{sample.path.stem}.srt").is_file()


def test_bad_files_are_reported_and_good_ones_still_transcribed(
    model_args: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = str(list_samples()[0].path)
    bad = [str(DATA_DIR / name) for name in ("truncated.wav", "picture.png", "empty.wav")]
    missing = str(tmp_path / "nowhere.wav")

    status = main(["transcribe", bad[0], good, bad[1], missing, bad[2], *model_args])

    out, err = capsys.readouterr()
    assert status == 2
    assert len(out.splitlines()) == 1
    assert Transcript.model_validate_json(out).id == Path(good).name
    assert "truncated.wav: truncated" in err
    assert "picture.png: this is a PNG image" in err
    assert "empty.wav: the file is empty" in err
    assert "nowhere.wav: no such file" in err
    assert "4 of 5 files failed" in err


def test_missing_model_folder_is_a_user_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(["transcribe", str(list_samples()[0].path), "--model", str(tmp_path)])
    assert status == 2
    assert "cannot load the model" in capsys.readouterr().err


def test_tampered_model_is_refused(
    model_args: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = tmp_path / "model"
    shutil.copytree(model_args[1], copy)
    with (copy / "model.onnx").open("ab") as handle:
        handle.write(b"\x00")
    status = main(["transcribe", str(list_samples()[0].path), "--model", str(copy)])
    assert status == 2
    assert "incomplete copy" in capsys.readouterr().err


def test_command_line_prints_no_traceback_for_bad_audio(model_args: list[str]) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "edgescribe.cli",
            "transcribe",
            str(DATA_DIR / "notes.txt"),
            *model_args,
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "notes.txt: this is a text file, not audio" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_progress_bar_draws_only_when_enabled() -> None:
    stream = io.StringIO()
    with ProgressBar(4, "eval", stream=stream, enabled=True) as bar:
        bar.advance()
        bar.advance()
    assert "\reval [" in stream.getvalue()
    assert "2/4" in stream.getvalue()

    quiet = io.StringIO()
    with ProgressBar(4, "eval", stream=quiet) as bar:  # StringIO is not a TTY
        bar.advance()
    assert quiet.getvalue() == ""
