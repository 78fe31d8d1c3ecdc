"""INT8-vs-fp32 comparison and held-out text overlap: the numbers the card's caveats rest on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from models.evaluation.benchmark import compare_int8, heldout_overlap_count
from models.evaluation.manifests import read_eval_manifest
from models.evaluation.model_stats import ModelInfo
from models.evaluation.report import RecognizerScores, SetScore


def info(name: str, quantization: str, size: int, steps: int = 1000) -> ModelInfo:
    return ModelInfo(
        name=name,
        version=1,
        label="0.1.0",
        quantization=quantization,
        architecture={"kind": "hybrid", "name": "edge"},
        params=10,
        file_bytes=size,
        sha256="0" * 64,
        training_data={"steps": steps},
        created_at="2026-11-25T00:00:00+00:00",
    )


def scores(name: str, cer: float, heldout_cer: float = 0.0) -> RecognizerScores:
    return RecognizerScores(
        name=name,
        kind="model",
        description="",
        clean={"an4_test": SetScore(n=10, cer=cer, wer=cer)},
        heldout={"heldout_flite_slt": SetScore(n=5, cer=heldout_cer, wer=0.0)},
    )


def test_relative_change_is_against_fp32_and_undefined_when_fp32_is_perfect() -> None:
    comparison = compare_int8(
        [info("edge", "int8-dynamic", 30), info("cloud", "fp32", 100)],
        [scores("edge", 0.102, 0.01), scores("cloud", 0.100, 0.0)],
        speedup=2.5,
    )
    assert comparison is not None
    assert comparison.size_ratio == pytest.approx(0.3)
    assert comparison.relative_cer_change["an4_test"] == pytest.approx(0.02)
    assert comparison.relative_cer_change["heldout_flite_slt (held-out)"] is None
    assert comparison.same_checkpoint
    assert comparison.speedup == 2.5


def test_exports_of_different_trainings_are_not_called_the_same_checkpoint() -> None:
    comparison = compare_int8(
        [info("edge", "int8-dynamic", 30, steps=500), info("cloud", "fp32", 100, steps=900)],
        [scores("edge", 0.2), scores("cloud", 0.1)],
        speedup=None,
    )
    assert comparison is not None
    assert not comparison.same_checkpoint


def test_no_comparison_without_both_kinds_of_model() -> None:
    assert compare_int8([info("cloud", "fp32", 100)], [scores("cloud", 0.1)], None) is None


def test_overlap_counts_normalised_sentences_found_in_training(tmp_path: Path) -> None:
    training = tmp_path / "train.jsonl"
    training.write_text(
        "".join(
            json.dumps({"audio": f"{i}.flac", "text": t}) + "\n"
            for i, t in enumerate(["Turn on the lights!", "call mom"])
        )
    )
    heldout = tmp_path / "heldout.jsonl"
    heldout.write_text(
        "".join(
            json.dumps({"audio": f"{v}/{i}.flac", "text": t, "set": v}) + "\n"
            for v in ("flite", "festival")
            for i, t in enumerate(["turn on the lights", "open the door"])
        )
    )
    assert heldout_overlap_count(read_eval_manifest(heldout), training) == (2, 1)
