"""Validation curves are read from train logs exactly as the trainer writes them."""

from __future__ import annotations

from pathlib import Path

from models.evaluation.learning_curves import read_curve, render


def _log(folder: Path, lines: list[str]) -> Path:
    folder.mkdir()
    (folder / "train.log").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def test_runs_are_compared_at_the_steps_each_reached(tmp_path: Path) -> None:
    a = _log(
        tmp_path / "a",
        [
            "10:00:00 model edge: 2.88 M params",
            "10:01:00 step 500 epoch 0 loss 3.0 lr 1e-3 elapsed 1.0 min progress 1.0%",
            "10:01:01 step 500 validation CER (train-split holdout) 0.900",
            "10:02:01 step 1000 validation CER (train-split holdout) 0.700",
        ],
    )
    b = _log(
        tmp_path / "b",
        ["model cnn_rnn: 2.05 M params", "step 500 validation CER (train-split holdout) 0.800"],
    )
    assert read_curve(a / "train.log") == ("2.88", {500: 0.9, 1000: 0.7})
    table = render({"hybrid": a, "cnn_rnn": b})
    assert "| step | hybrid (2.88 M) | cnn_rnn (2.05 M) |" in table
    assert "| 500 | 0.900 | 0.800 |" in table
    assert "| 1000 | 0.700 | - |" in table
