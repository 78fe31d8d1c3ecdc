"""``edgescribe bench model`` end to end on the committed demo clips (no ../shared, no TTS):
the released models through the real runtime, real noise mixing, JSON + tables + model card."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

from edgescribe.cli import main
from edgescribe.commands.bench_model import QUICK_DIR, _outputs
from edgescribe.samples import SAMPLES_DIR, SAMPLES_MANIFEST
from models.runtime.artifacts import CLOUD_MODEL_NAME, DEFAULT_MODEL_NAME


@pytest.fixture
def noise_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "noise"
    folder.mkdir()
    rng = np.random.default_rng(0)
    soundfile.write(folder / "hiss.wav", 0.05 * rng.standard_normal(32_000), 16_000)
    return folder


def bench_args(tmp_path: Path, *extra: str) -> list[str]:
    return [
        "bench",
        "model",
        "--eval-manifest",
        str(SAMPLES_MANIFEST),
        "--train-manifest",
        str(SAMPLES_MANIFEST),
        "--no-peer",
        "--limit",
        "2",
        "--speed-rounds",
        "1",
        "--speed-seconds",
        "1",
        "--out-json",
        str(tmp_path / "out" / "model.json"),
        "--out-md",
        str(tmp_path / "out" / "model.md"),
        "--model-card",
        str(tmp_path / "out" / "model-card.md"),
        *extra,
    ]


def test_quick_bench_on_committed_samples_writes_json_tables_and_card(
    tmp_path: Path, noise_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(
        bench_args(
            tmp_path,
            "--noise-dir",
            str(noise_dir),
            "--snr",
            "10",
            "--heldout-manifest",
            str(SAMPLES_MANIFEST),
        )
    )
    assert status == 0
    report = json.loads((tmp_path / "out" / "model.json").read_text())

    models = {m["name"]: m for m in report["models"]}
    assert set(models) == {DEFAULT_MODEL_NAME, CLOUD_MODEL_NAME}
    assert models[DEFAULT_MODEL_NAME]["quantization"].startswith("int8")
    assert models[DEFAULT_MODEL_NAME]["params"] == models[CLOUD_MODEL_NAME]["params"] > 100_000
    sizes = {name: m["file_bytes"] for name, m in models.items()}
    assert report["comparison"]["size_ratio"] == pytest.approx(
        sizes[DEFAULT_MODEL_NAME] / sizes[CLOUD_MODEL_NAME], abs=1e-4
    )

    for result in report["results"]:
        assert result["clean"]["samples"]["n"] == 2
        assert result["noisy"]["10"]["samples"]["n"] == 2
        assert result["heldout"]["samples"]["n"] == 2
        assert 0.0 <= result["clean"]["samples"]["cer"] <= 5.0
    assert set(report["speed"]["rtf"]) == {DEFAULT_MODEL_NAME, CLOUD_MODEL_NAME}
    assert all(v > 0 for v in report["speed"]["rtf"].values())
    assert report["settings"]["snr_db"] == [10.0]
    assert report["data"][0]["name"] == "samples"

    markdown = (tmp_path / "out" / "model.md").read_text()
    card = (tmp_path / "out" / "model-card.md").read_text()
    assert "### 10 dB SNR" in markdown
    assert f"`{DEFAULT_MODEL_NAME}`" in card
    assert "## Caveats" in card
    assert "| target | measured | status |" in capsys.readouterr().out


def test_bench_skips_corrupt_clips_and_scores_the_rest(tmp_path: Path) -> None:
    shutil.copy(SAMPLES_DIR / "weather.wav", tmp_path / "weather.wav")
    (tmp_path / "broken.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt garbage")
    manifest = tmp_path / "eval.jsonl"
    manifest.write_text(
        json.dumps({"audio": "broken.wav", "text": "nothing", "set": "s"})
        + "\n"
        + json.dumps({"audio": "weather.wav", "text": "the weather looks clear", "set": "s"})
        + "\n"
    )
    args = bench_args(tmp_path, "--no-noise", "--no-heldout")
    args[args.index(str(SAMPLES_MANIFEST))] = str(manifest)
    assert main(args) == 0
    report = json.loads((tmp_path / "out" / "model.json").read_text())
    assert report["results"][0]["clean"]["s"]["n"] == 1
    assert len(report["skipped"]) == 1
    assert "broken.wav" in report["skipped"][0]


def test_unreadable_manifest_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = bench_args(tmp_path, "--no-noise", "--no-heldout")
    args[args.index(str(SAMPLES_MANIFEST))] = str(tmp_path / "missing.jsonl")
    assert main(args) == 2
    assert "missing.jsonl: cannot read the manifest" in capsys.readouterr().err
    assert not (tmp_path / "out" / "model.json").exists()


def test_missing_noise_folder_names_the_flag_that_skips_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(bench_args(tmp_path, "--noise-dir", str(tmp_path / "nope"), "--no-heldout"))
    assert status == 2
    err = capsys.readouterr().err
    assert "no such noise folder" in err
    assert "--no-noise" in err


def test_missing_peer_names_the_extra_and_the_flag(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "pocketsphinx", None)  # import now raises ImportError
    args = [a for a in bench_args(tmp_path, "--no-noise", "--no-heldout") if a != "--no-peer"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "pip install -e '.[peer]'" in err
    assert "--no-peer" in err


def test_bad_model_folder_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "model").mkdir()
    assert (
        main(bench_args(tmp_path, "--no-noise", "--no-heldout", "--model", str(tmp_path / "model")))
        == 2
    )
    assert "no manifest.json" in capsys.readouterr().err


def test_quick_run_never_overwrites_the_committed_docs() -> None:
    quick = argparse.Namespace(quick=True, out_json=None, out_md=None, model_card=None)
    assert all(path.is_relative_to(QUICK_DIR) for path in _outputs(quick))
    full = argparse.Namespace(quick=False, out_json=None, out_md=None, model_card=None)
    assert [p.name for p in _outputs(full)] == ["model.json", "model.md", "model-card.md"]
