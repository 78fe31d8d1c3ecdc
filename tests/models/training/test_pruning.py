"""Structured pruning: a genuinely smaller model that still honours the model's contracts.

Protects against: index surgery that mixes up gates, directions or heads (caught by the exact
keep=1.0 identity and by removing units whose contribution was made exactly zero), a pruned model
that only masks weights (the parameter count must fall), and a pruned model that loses batch
invariance (Triton batching must not change a clip's transcript).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from models.training.architecture import AcousticModel, ModelConfig
from models.training.pruning import PruningError, count_params, kept_count, prune_model

SMALL = ModelConfig(
    name="small", tdnn_channels=32, lstm_hidden=16, lstm_layers=2, attention_heads=4, dropout=0.0
)


def _model(kind: str = "hybrid", seed: int = 0) -> AcousticModel:
    torch.manual_seed(seed)
    config = ModelConfig(**{**SMALL.to_dict(), "kind": kind})  # type: ignore[arg-type]
    return AcousticModel(config).eval()


def _clips() -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(1)
    audio = torch.randn(2, 24_000) * 0.1
    audio[1, 15_000:] = 0
    return audio, torch.tensor([24_000, 15_000])


@pytest.mark.parametrize("kind", ["hybrid", "cnn_rnn"])
def test_keeping_everything_reproduces_the_original_outputs_exactly(kind: str) -> None:
    model = _model(kind)
    result = prune_model(model, 1.0, 1.0)
    audio, lengths = _clips()
    with torch.no_grad():
        expected, expected_len = model(audio, lengths)
        got, got_len = result.model.eval()(audio, lengths)
    assert result.pruned_params == result.original_params
    assert torch.equal(got_len, expected_len)
    assert torch.equal(got, expected)


@pytest.mark.parametrize("kind", ["hybrid", "cnn_rnn"])
def test_pruning_shrinks_every_block_and_the_parameter_count(kind: str) -> None:
    model = _model(kind)
    result = prune_model(model, 0.75, 0.5)
    assert result.config.tdnn_channels == 24
    assert result.config.lstm_hidden == 8
    assert result.config.name == "small-pruned"
    assert result.pruned_params == count_params(result.model) < 0.6 * result.original_params
    audio, lengths = _clips()
    with torch.no_grad():
        log_probs, out_lengths = result.model.eval()(audio, lengths)
        _, original_lengths = model(audio, lengths)
    assert log_probs.shape[-1] == SMALL.vocab_size
    assert torch.equal(out_lengths, original_lengths)
    assert torch.allclose(log_probs.exp().sum(-1), torch.ones_like(log_probs[..., 0]), atol=1e-4)


def test_a_pruned_clip_gets_the_same_output_alone_and_padded_in_a_batch() -> None:
    pruned = prune_model(_model(), 0.75, 0.75).model.eval()
    torch.manual_seed(2)
    short, long = torch.randn(1, 12_000) * 0.1, torch.randn(1, 30_000) * 0.1
    batch = torch.zeros(2, 30_000)
    batch[0, :12_000], batch[1] = short[0], long[0]
    with torch.no_grad():
        alone, alone_len = pruned(short, torch.tensor([12_000]))
        batched, _ = pruned(batch, torch.tensor([12_000, 30_000]))
    n = int(alone_len[0])
    torch.testing.assert_close(batched[0, :n], alone[0, :n], atol=1e-5, rtol=1e-4)


def test_removing_lstm_units_whose_contribution_is_zero_changes_nothing() -> None:
    """Zero a unit's recurrent column and every outgoing weight: removing it must be exact.

    The CNN-RNN variant has no LayerNorm after the LSTMs, so the identity is exact; a wrong gate
    row, direction offset or column would break it.
    """
    model = _model("cnn_rnn", seed=3)
    sd = model.state_dict()
    h = SMALL.lstm_hidden
    dead = {0: [1, 5, 9, 14], 1: [0, 3, 7, 12]}
    with torch.no_grad():
        for layer, units in dead.items():
            for offset, direction in ((0, "forward_lstm"), (h, "backward_lstm")):
                sd[f"lstms.{layer}.{direction}.weight_hh_l0"][:, units] = 0
                columns = [u + offset for u in units]
                if layer + 1 < SMALL.lstm_layers:
                    for nxt in ("forward_lstm", "backward_lstm"):
                        sd[f"lstms.{layer + 1}.{nxt}.weight_ih_l0"][:, columns] = 0
                else:
                    sd["head.weight"][:, columns] = 0
    model.load_state_dict(sd)
    result = prune_model(model, 1.0, 0.75)
    assert result.config.lstm_hidden == 12
    audio, lengths = _clips()
    with torch.no_grad():
        expected, _ = model(audio, lengths)
        got, _ = result.model.eval()(audio, lengths)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_the_weakest_tdnn_filters_are_the_ones_removed() -> None:
    model = _model()
    weak = [2, 7, 11, 20, 25, 30, 31, 0]
    sd = model.state_dict()
    sd["tdnn.0.conv.weight"][weak] *= 1e-3
    model.load_state_dict(sd)
    kept_rows = prune_model(model, 0.75, 1.0).model.state_dict()["tdnn.0.conv.weight"]
    original = model.state_dict()["tdnn.0.conv.weight"]
    survivors = [i for i in range(SMALL.tdnn_channels) if i not in weak]
    assert torch.equal(kept_rows, original[survivors])


@pytest.mark.parametrize("keep", [0.0, -0.5, 1.5])
def test_an_impossible_keep_fraction_is_rejected(keep: float) -> None:
    with pytest.raises(PruningError, match="keep fraction"):
        kept_count(64, keep)


def test_lstm_width_stays_divisible_into_attention_heads() -> None:
    result = prune_model(_model(), 1.0, 0.6)  # 16 * 0.6 = 9.6 -> 10 units -> 20 outputs / 4 heads
    assert (2 * result.config.lstm_hidden) % SMALL.attention_heads == 0


@pytest.mark.slow
def test_the_cli_prunes_a_checkpoint_and_fine_tunes_from_the_pruned_weights(
    tiny_manifest: Path, tmp_path: Path
) -> None:
    source = tmp_path / "source.pt"
    original = _model()
    torch.save({"model": original.state_dict(), "config": SMALL.to_dict(), "step": 7}, source)
    out = tmp_path / "pruned-run"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "models.training.pruning",
            str(source),
            "--out",
            str(out),
            "--tdnn-keep",
            "0.5",
            "--lstm-keep",
            "0.5",
            "--minutes",
            "5",
            "--manifest",
            str(tiny_manifest),
            "--max-steps",
            "2",
            "--cache-dir",
            str(tmp_path / "cache"),
            "--noise-manifest",
            str(tmp_path / "none.jsonl"),
            "--batch-seconds",
            "3",
            "--valid-count",
            "2",
            "--threads",
            "1",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "initialised from" in (out / "train.log").read_text()
    final = torch.load(out / "final.pt", weights_only=False)
    pruned = torch.load(out / "pruned.pt", weights_only=False)
    assert final["config"] == pruned["config"]
    assert final["config"]["tdnn_channels"] == 16
    assert final["config"]["lstm_hidden"] == 8
    assert final["step"] == 2
    model = AcousticModel(ModelConfig(**final["config"]))
    model.load_state_dict(final["model"])
    assert count_params(model) < 0.4 * count_params(original)
    assert any(not torch.equal(final["model"][k], v) for k, v in pruned["model"].items())


def _bench_entry(name: str, params: int, size: int, cer: float) -> tuple[dict[str, Any], ...]:
    info: dict[str, Any] = {
        "name": name,
        "architecture": {"tdnn_channels": params // 1000, "lstm_hidden": 1},
        "quantization": "int8-static",
        "params": params,
        "file_bytes": size,
    }
    result: dict[str, Any] = {
        "name": name,
        "kind": "model",
        "clean": {"a": {"n": 1, "cer": cer, "wer": 2 * cer}, "all": {"n": 1, "cer": cer, "wer": 0}},
        "noisy": {"snr10": {"all": {"n": 1, "cer": 2 * cer, "wer": 0}}},
        "heldout": {"all": {"n": 1, "cer": cer, "wer": 0}},
    }
    return info, result


def test_the_report_states_sizes_and_speed_relative_to_the_released_model() -> None:
    from models.training.pruning import build_report, render_markdown

    base_info, base_result = _bench_entry("edgescribe-edge", 2000, 4000, 0.2)
    small_info, small_result = _bench_entry("edgescribe-edge-pruned", 1000, 3000, 0.25)
    bench = {
        "created_at": "2026-11-25T00:00:00Z",
        "host": {"cpu": "x", "cores": 2, "onnxruntime": "1"},
        "settings": {"eval_manifest": "eval.jsonl"},
        "speed": {"rtf": {"edgescribe-edge": 0.002, "edgescribe-edge-pruned": 0.001}},
        "models": [base_info, small_info],
        "results": [base_result, small_result, {"name": "peer", "kind": "peer"}],
    }
    report = build_report(bench, {}, "edgescribe-edge", "bench.json")
    pruned = report["models"][1]
    assert pruned["params_ratio"] == 0.5
    assert pruned["file_ratio"] == 0.75
    assert pruned["speedup_vs_baseline"] == 2.0
    assert pruned["cer_noisy_all"] == {"snr10": 0.5}
    markdown = render_markdown(report)
    assert "| edgescribe-edge-pruned | 25.0 % | 25.0 % |" in markdown
    with pytest.raises(PruningError, match="baseline 'other'"):
        build_report(bench, {}, "other", "bench.json")
