"""Structured pruning of the acoustic model: a genuinely smaller network, then a recovery fine-tune.

    python -m models.training.pruning runs/edge-v1/final.pt --out runs/edge-pruned \
        --tdnn-keep 0.75 --lstm-keep 0.75 --minutes 15 \
        --manifest ../shared/data/speech/train.jsonl --manifest data/synth/manifest.jsonl
    python -m models.training.pruning report --bench-json B.json --summary runs/edge-pruned/pruning.json \
        --out-json docs/benchmarks/pruning.json --out-md docs/benchmarks/pruning.md

Why structured (whole channels and units) and not masks: zeroed weights in a dense ONNX graph cost
the same bytes and the same multiply-adds on a phone; removing channels shrinks every matrix, so the
INT8 file, its memory and its run time all shrink. The result is a plain ``ModelConfig`` with
smaller ``tdnn_channels`` / ``lstm_hidden`` and a state dict for it: export, serving and the ONNX
contract need no change.

What is removed (every layer keeps the same *number* of channels, because the config has one
width per block; *which* ones each layer keeps is chosen per layer):
- TDNN and the stride-3 convolution: output channels with the smallest L1 filter norm; the same
  channels go from the LayerNorm's weight/bias and from the next layer's input.
- LSTM: hidden units the next block reads least (smallest L1 norm of their outgoing weights);
  their rows in all four gates (i, f, g, o) go from ``weight_ih``/``weight_hh``/biases, their
  column from ``weight_hh``, and their output from the next consumer's input (next LSTM, or
  attention + head).
- Attention, whose width is tied to the LSTM output by the residual connection: per head, the
  query/key dimensions with the smallest ``|q| * |k|`` and value dimensions with the smallest
  ``|v| * |out|``; queries are rescaled by ``sqrt(new_head_dim / old_head_dim)`` so the softmax
  temperature (``1/sqrt(head_dim)``) stays what the model learnt.

LayerNorm statistics change when channels leave, so the pruned model is an approximation; the
fine-tune (``models.training.train`` with ``--init-checkpoint``) recovers. With keep = 1.0 every
index is kept in order and the model computes exactly what the original does.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from models.training.architecture import AcousticModel, ModelConfig

StateDict = dict[str, torch.Tensor]
GATES = 4  # nn.LSTM stacks the i, f, g, o gate rows in that order


class PruningError(ValueError):
    """The requested pruning is impossible for this model (the message says why)."""


@dataclass(frozen=True)
class PruneResult:
    model: AcousticModel
    original_params: int
    pruned_params: int

    @property
    def config(self) -> ModelConfig:
        return self.model.config


def count_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def kept_count(total: int, keep: float, multiple: int = 1) -> int:
    """``round(total * keep)`` to a multiple of ``multiple``, at least ``multiple``, at most total."""
    if not 0.0 < keep <= 1.0:
        raise PruningError(f"keep fraction must be in (0, 1], got {keep}")
    count = max(multiple, round(total * keep / multiple) * multiple)
    return min(total, count)


def _top(scores: torch.Tensor, count: int) -> torch.Tensor:
    """Indices of the ``count`` largest scores, in ascending index order (order = original order)."""
    if count >= scores.numel():
        return torch.arange(scores.numel())
    return torch.sort(torch.topk(scores, count).indices).values


def _gate_rows(units: torch.Tensor, hidden: int) -> torch.Tensor:
    return torch.cat([units + gate * hidden for gate in range(GATES)])


def _prune_convs(sd: StateDict, out: StateDict, config: ModelConfig, channels: int) -> torch.Tensor:
    """TDNN layers + subsampling conv; returns the channels the subsampling conv keeps."""
    layers = sorted({int(m.group(1)) for k in sd if (m := re.match(r"tdnn\.(\d+)\.", k))})
    previous: torch.Tensor | None = None
    for i in layers:
        prefix = f"tdnn.{i}."
        weight = sd[prefix + "conv.weight"]
        keep = _top(weight.abs().sum(dim=(1, 2)), channels)
        weight = weight[keep]
        out[prefix + "conv.weight"] = weight if previous is None else weight[:, previous]
        for name in ("conv.bias", "norm.weight", "norm.bias"):
            out[prefix + name] = sd[prefix + name][keep]
        previous = keep
    assert previous is not None
    weight = sd["subsample.weight"]
    keep = _top(weight.abs().sum(dim=(1, 2)), channels)
    out["subsample.weight"] = weight[keep][:, previous]
    out["subsample.bias"] = sd["subsample.bias"][keep]
    return keep


def _outgoing_weight(sd: StateDict, config: ModelConfig, layer: int) -> torch.Tensor:
    """L1 weight with which each of layer ``layer``'s 2h outputs is read by the next block."""
    if layer + 1 < config.lstm_layers:
        nxt = f"lstms.{layer + 1}."
        return sd[nxt + "forward_lstm.weight_ih_l0"].abs().sum(0) + sd[
            nxt + "backward_lstm.weight_ih_l0"
        ].abs().sum(0)
    if config.kind == "hybrid":  # attention reads LayerNorm(x): gamma scales each feature's say
        return sd["attention.qkv.weight"].abs().sum(0) * sd["attention.norm.weight"].abs()
    return sd["head.weight"].abs().sum(0)


def _prune_lstms(
    sd: StateDict, out: StateDict, config: ModelConfig, inputs: torch.Tensor, hidden: int
) -> torch.Tensor:
    """Every BiLSTM layer; returns the kept output features of the last one (fwd ++ bwd).

    A unit's importance is how strongly the next block reads it (L1 of its outgoing weights):
    on 80 held-back training clips, removing a quarter of the units of the edge model by that
    score gave CER 0.61 before fine-tuning, against 0.68 by the L1 of the unit's own gate rows
    and 0.72 by its mean activation (original: 0.41).
    """
    h = config.lstm_hidden
    for layer in range(config.lstm_layers):
        outgoing = _outgoing_weight(sd, config, layer)
        kept_out = []
        for offset, direction in ((0, "forward_lstm"), (h, "backward_lstm")):
            prefix = f"lstms.{layer}.{direction}."
            w_ih, w_hh = sd[prefix + "weight_ih_l0"], sd[prefix + "weight_hh_l0"]
            units = _top(outgoing[offset : offset + h], hidden)
            rows = _gate_rows(units, h)
            out[prefix + "weight_ih_l0"] = w_ih[rows][:, inputs]
            out[prefix + "weight_hh_l0"] = w_hh[rows][:, units]
            out[prefix + "bias_ih_l0"] = sd[prefix + "bias_ih_l0"][rows]
            out[prefix + "bias_hh_l0"] = sd[prefix + "bias_hh_l0"][rows]
            kept_out.append(units + offset)
        inputs = torch.cat(kept_out)
    return inputs


def _prune_attention(
    sd: StateDict, out: StateDict, config: ModelConfig, residual: torch.Tensor, head_dim: int
) -> None:
    dim = 2 * config.lstm_hidden
    heads = config.attention_heads
    old_head_dim = dim // heads
    w_qkv, b_qkv = sd["attention.qkv.weight"], sd["attention.qkv.bias"]
    w_out = sd["attention.out.weight"]
    q_rows, v_rows = [], []
    for head in range(heads):
        span = torch.arange(head * old_head_dim, (head + 1) * old_head_dim)
        qk_score = w_qkv[span].abs().sum(1) * w_qkv[dim + span].abs().sum(1)
        v_score = w_qkv[2 * dim + span].abs().sum(1) * w_out[:, span].abs().sum(0)
        q_rows.append(span[_top(qk_score, head_dim)])
        v_rows.append(span[_top(v_score, head_dim)])
    q, v = torch.cat(q_rows), torch.cat(v_rows)
    rows = torch.cat([q, dim + q, 2 * dim + v])
    weight, bias = w_qkv[rows][:, residual].clone(), b_qkv[rows].clone()
    # keep q.k / sqrt(head_dim) unchanged although head_dim shrinks (exactly 1.0 when it does not)
    scale = math.sqrt(head_dim / old_head_dim)
    if scale != 1.0:
        weight[: q.numel()] *= scale
        bias[: q.numel()] *= scale
    out["attention.qkv.weight"], out["attention.qkv.bias"] = weight, bias
    out["attention.out.weight"] = w_out[residual][:, v]
    out["attention.out.bias"] = sd["attention.out.bias"][residual]
    out["attention.norm.weight"] = sd["attention.norm.weight"][residual]
    out["attention.norm.bias"] = sd["attention.norm.bias"][residual]


def prune_model(model: AcousticModel, tdnn_keep: float, lstm_keep: float) -> PruneResult:
    """A smaller ``AcousticModel`` holding the most important channels/units of ``model``."""
    config = model.config
    channels = kept_count(config.tdnn_channels, tdnn_keep)
    # 2 * hidden is split into attention heads: keep it divisible by the head count
    multiple = config.attention_heads // math.gcd(2, config.attention_heads)
    hidden = kept_count(config.lstm_hidden, lstm_keep, multiple if config.kind == "hybrid" else 1)
    if config.kind == "hybrid" and (2 * hidden) % config.attention_heads:
        raise PruningError(
            f"{2 * hidden} LSTM outputs do not split into {config.attention_heads} heads"
        )
    sd = {k: v.detach().clone() for k, v in model.state_dict().items()}
    out: StateDict = {}
    conv_out = _prune_convs(sd, out, config, channels)
    residual = _prune_lstms(sd, out, config, conv_out, hidden)
    if config.kind == "hybrid":
        _prune_attention(sd, out, config, residual, 2 * hidden // config.attention_heads)
    out["head.weight"] = sd["head.weight"][:, residual]
    out["head.bias"] = sd["head.bias"]
    new_config = replace(
        config,
        name=config.name
        if config.name.endswith("-pruned")
        or (channels, hidden) == (config.tdnn_channels, config.lstm_hidden)
        else f"{config.name}-pruned",
        tdnn_channels=channels,
        lstm_hidden=hidden,
    )
    pruned = AcousticModel(new_config)
    missing = set(pruned.state_dict()) - set(out)
    if missing:
        raise PruningError(f"pruning does not cover these parameters: {sorted(missing)}")
    pruned.load_state_dict({k: v.contiguous() for k, v in out.items()}, strict=True)
    pruned.train(model.training)
    return PruneResult(pruned, count_params(model), count_params(pruned))


def load_checkpoint(path: Path) -> tuple[AcousticModel, dict[str, Any]]:
    ckpt = torch.load(path, weights_only=False, map_location="cpu")
    model = AcousticModel(ModelConfig(**ckpt["config"]))
    model.load_state_dict(ckpt["model"])
    return model.eval(), ckpt


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Other options (--batch-seconds, --threads, --seed, --noise-manifest, --cache-dir, "
        "...) go to models.training.train unchanged.",
    )
    p.add_argument("checkpoint", type=Path, help="trained checkpoint (final.pt or last.pt)")
    p.add_argument("--out", type=Path, required=True, help="run folder for the pruned model")
    p.add_argument("--tdnn-keep", type=float, default=0.75, help="fraction of TDNN channels kept")
    p.add_argument("--lstm-keep", type=float, default=0.75, help="fraction of LSTM units kept")
    p.add_argument(
        "--minutes", type=float, default=15.0, help="recovery fine-tune budget (0: prune only)"
    )
    p.add_argument("--manifest", type=Path, action="append", default=[])
    p.add_argument("--lr", type=float, default=5e-4, help="fine-tune peak learning rate")
    p.add_argument("--warmup", type=int, default=100, help="fine-tune warm-up steps")
    return p


def prune_and_finetune(argv: Sequence[str]) -> None:
    args, passthrough = build_parser().parse_known_args(argv)
    if args.minutes > 0 and not args.manifest:
        raise SystemExit("--manifest is required for the fine-tune (or pass --minutes 0)")
    torch.manual_seed(0)
    model, ckpt = load_checkpoint(args.checkpoint)
    result = prune_model(model, args.tdnn_keep, args.lstm_keep)
    args.out.mkdir(parents=True, exist_ok=True)
    pruned_path = args.out / "pruned.pt"
    summary = {
        "source": str(args.checkpoint),
        "source_step": int(ckpt.get("step", 0)),
        "tdnn_keep": args.tdnn_keep,
        "lstm_keep": args.lstm_keep,
        "original_config": model.config.to_dict(),
        "pruned_config": result.config.to_dict(),
        "original_params": result.original_params,
        "pruned_params": result.pruned_params,
    }
    torch.save(
        {"model": result.model.state_dict(), "config": result.config.to_dict(), "step": 0},
        pruned_path,
    )
    (args.out / "pruning.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(
        f"pruned {args.checkpoint}: {result.original_params / 1e6:.2f} M -> "
        f"{result.pruned_params / 1e6:.2f} M params "
        f"(tdnn {model.config.tdnn_channels} -> {result.config.tdnn_channels}, "
        f"lstm {model.config.lstm_hidden} -> {result.config.lstm_hidden}); wrote {pruned_path}",
        flush=True,
    )
    if args.minutes <= 0:
        torch.save(
            {"model": result.model.state_dict(), "config": result.config.to_dict(), "step": 0},
            args.out / "final.pt",
        )
        return
    from models.training import train

    train_argv = [
        "--init-checkpoint",
        str(pruned_path),
        "--out",
        str(args.out),
        "--minutes",
        str(args.minutes),
        "--lr",
        str(args.lr),
        "--warmup",
        str(args.warmup),
        *[item for m in args.manifest for item in ("--manifest", str(m))],
        *passthrough,
    ]
    train.main(train_argv)


def run_facts(run: Path) -> dict[str, Any]:
    """What a pruning run folder says about itself: pruning summary + fine-tune steps and minutes."""
    facts: dict[str, Any] = {"run": str(run)}
    summary = run / "pruning.json"
    if summary.exists():
        facts["pruning"] = json.loads(summary.read_text())
    last = run / "last.pt"
    if last.exists():
        ckpt = torch.load(last, weights_only=False, map_location="cpu")
        facts["finetune_steps"] = int(ckpt["step"])
        facts["finetune_minutes"] = round(float(ckpt["elapsed"]) / 60, 1)
    else:
        facts["finetune_steps"] = 0
        facts["finetune_minutes"] = 0.0
    return facts


def _cer_row(result: dict[str, Any], mapping: str) -> dict[str, float]:
    return {name: score["cer"] for name, score in result.get(mapping, {}).items()}


def build_report(
    bench: dict[str, Any], runs: dict[str, Path], baseline: str, bench_path: str
) -> dict[str, Any]:
    """``docs/benchmarks/pruning.json``: one entry per model of the benchmark run."""
    infos = {m["name"]: m for m in bench["models"]}
    results = {r["name"]: r for r in bench["results"] if r["kind"] == "model"}
    rtf = (bench.get("speed") or {}).get("rtf", {})
    if baseline not in infos:
        raise PruningError(f"baseline {baseline!r} is not in the benchmark ({sorted(infos)})")
    models = []
    for name, info in infos.items():
        result = results[name]
        entry: dict[str, Any] = {
            "name": name,
            "role": "baseline"
            if name == baseline
            else ("pruned" if info["params"] < infos[baseline]["params"] else "unpruned"),
            "architecture": info["architecture"],
            "quantization": info["quantization"],
            "params": info["params"],
            "file_bytes": info["file_bytes"],
            "rtf_1thread": rtf.get(name),
            "cer_clean": _cer_row(result, "clean"),
            "wer_clean": {k: v["wer"] for k, v in result.get("clean", {}).items()},
            "cer_noisy_all": {
                snr: sets.get("all", {}).get("cer") for snr, sets in result.get("noisy", {}).items()
            },
            "cer_heldout_voices": _cer_row(result, "heldout"),
        }
        if name in runs:
            entry.update(run_facts(runs[name]))
        models.append(entry)
    base = next(m for m in models if m["name"] == baseline)
    for entry in models:
        entry["params_ratio"] = round(entry["params"] / base["params"], 4)
        entry["file_ratio"] = round(entry["file_bytes"] / base["file_bytes"], 4)
        if entry["rtf_1thread"] and base["rtf_1thread"]:
            entry["speedup_vs_baseline"] = round(base["rtf_1thread"] / entry["rtf_1thread"], 3)
    return {
        "created_at": bench["created_at"],
        "host": bench["host"],
        "benchmark": bench_path,
        "settings": bench["settings"],
        "speed": bench.get("speed"),
        "baseline": baseline,
        "models": models,
        # the whole benchmark report, so the committed JSON stands alone (build/ is not committed)
        "raw_benchmark": bench,
    }


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f} %"


def render_markdown(report: dict[str, Any]) -> str:
    models = report["models"]
    sets = [s for s in models[0]["cer_clean"] if s != "all"] + ["all"]
    lines = [
        "# Structured pruning of the edge model",
        "",
        f"One `edgescribe bench model` run ({report['created_at']}; its full report is "
        f"`raw_benchmark` in pruning.json), host {report['host']['cpu']}"
        f", {report['host']['cores']} cores, onnxruntime {report['host']['onnxruntime']}; eval "
        f"manifest `{report['settings']['eval_manifest']}`. All models INT8 exports "
        "(static INT8 convolutions calibrated on the synthetic training manifest, like `make export`).",
        "",
        "| model | TDNN ch. | LSTM units | params | file | RTF (1 thread) | fine-tune |",
        "|---|---|---|---|---|---|---|",
    ]
    for m in models:
        arch = m["architecture"]
        tune = (
            f"{m['finetune_steps']} steps / {m['finetune_minutes']} min"
            if m.get("finetune_steps")
            else ("-" if m["role"] == "baseline" else "none")
        )
        rtf = m["rtf_1thread"]
        speed = "-" if rtf is None else f"{rtf:.5f}"
        if "speedup_vs_baseline" in m:
            speed += f" ({m['speedup_vs_baseline']:.2f}x)"
        lines.append(
            f"| {m['name']} | {arch.get('tdnn_channels')} | {arch.get('lstm_hidden')} | "
            f"{m['params'] / 1e6:.2f} M ({100 * m['params_ratio']:.0f} %) | "
            f"{m['file_bytes'] / 1e6:.2f} MB ({100 * m['file_ratio']:.0f} %) | "
            f"{speed} | {tune} |"
        )
    lines += [
        "",
        "CER on the clean eval sets (lower is better):",
        "",
        "| model | " + " | ".join(sets) + " |",
        "|---|" + "---|" * len(sets),
    ]
    for m in models:
        lines.append(
            f"| {m['name']} | " + " | ".join(_pct(m["cer_clean"].get(s)) for s in sets) + " |"
        )
    snrs = list(models[0]["cer_noisy_all"])
    if snrs:
        lines += [
            "",
            "CER over all eval sets with added noise, and on held-out synthetic voices:",
            "",
            "| model | " + " | ".join(f"{snr} dB SNR" for snr in snrs) + " | held-out voices |",
            "|---|" + "---|" * (len(snrs) + 1),
        ]
        for m in models:
            lines.append(
                f"| {m['name']} | "
                + " | ".join(_pct(m["cer_noisy_all"][s]) for s in snrs)
                + f" | {_pct(m['cer_heldout_voices'].get('all'))} |"
            )
    return "\n".join(lines) + "\n"


def report_main(argv: Sequence[str]) -> None:
    """``report``: turn an ``edgescribe bench model`` JSON into the pruning benchmark docs."""
    p = argparse.ArgumentParser(prog="python -m models.training.pruning report")
    p.add_argument("--bench-json", type=Path, required=True)
    p.add_argument("--baseline", default="edgescribe-edge")
    p.add_argument(
        "--run",
        action="append",
        default=[],
        metavar="NAME=DIR",
        help="model name in the benchmark = its pruning run folder (for pruning/fine-tune facts)",
    )
    p.add_argument("--out-json", type=Path, required=True)
    p.add_argument("--out-md", type=Path, required=True)
    p.add_argument("--notes", type=Path, default=None, help="markdown appended to the report")
    args = p.parse_args(argv)
    runs = {}
    for item in args.run:
        name, _, folder = item.partition("=")
        runs[name] = Path(folder)
    bench = json.loads(args.bench_json.read_text())
    report = build_report(bench, runs, args.baseline, str(args.bench_json))
    markdown = render_markdown(report)
    if args.notes is not None:
        markdown += "\n" + args.notes.read_text()
    args.out_json.parent.mkdir(parents=True, exist_ok=True)
    args.out_json.write_text(json.dumps(report, indent=2) + "\n")
    args.out_md.write_text(markdown)
    print(markdown)


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "report":
        report_main(argv[1:])
        return
    prune_and_finetune(argv)


if __name__ == "__main__":
    main()
