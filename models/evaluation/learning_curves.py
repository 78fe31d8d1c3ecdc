"""Compare training runs by their validation CER at equal step counts (a table from train logs).

    python -m models.evaluation.learning_curves hybrid=runs/edge-v1 cnn_rnn=runs/cnn-rnn \
        --out docs/benchmarks/ablation-curves.md

Why from logs: every run of ``models.training.train`` with the same data and seed validates on the
same 150 held-back *training* utterances every 500 steps, so runs can be compared step for step
without keeping checkpoints, and without touching the evaluation sets. What this cannot show is
how the final models compare: a run stopped early is compared only as far as it got.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

_VALIDATION = re.compile(r"step (\d+) validation CER \(train-split holdout\) ([0-9.]+)")
_PARAMS = re.compile(r"model (\S+): ([0-9.]+) M params")


def read_curve(log: Path) -> tuple[str | None, dict[int, float]]:
    """(parameter count in millions, {step: validation CER}) from one ``train.log``."""
    text = log.read_text(encoding="utf-8")
    params = _PARAMS.search(text)
    curve = {int(step): float(cer) for step, cer in _VALIDATION.findall(text)}
    return (params.group(2) if params else None), curve


def render(runs: dict[str, Path]) -> str:
    curves = {name: read_curve(folder / "train.log") for name, folder in runs.items()}
    steps = sorted({step for _, curve in curves.values() for step in curve})
    header = " | ".join(f"{name} ({params or '?'} M)" for name, (params, _) in curves.items())
    lines = [
        "| step | " + header + " |",
        "|---|" + "---|" * len(curves),
    ]
    for step in steps:
        cells = [f"{curve[step]:.3f}" if step in curve else "-" for _, (_, curve) in curves.items()]
        lines.append(f"| {step} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("runs", nargs="+", help="name=run folder (holding train.log)")
    parser.add_argument("--out", type=Path, default=None, help="write the table here too")
    args = parser.parse_args()
    runs = {}
    for item in args.runs:
        name, _, folder = item.partition("=")
        runs[name] = Path(folder)
    table = render(runs)
    print(table)
    if args.out:
        args.out.write_text(table, encoding="utf-8")


if __name__ == "__main__":
    main()
