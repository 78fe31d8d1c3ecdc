"""``edgescribe bench model``: the acoustic-model benchmark (plugged into ``edgescribe bench``).

Scores the released models (INT8 ``edgescribe-edge``, fp32 ``edgescribe-cloud``) and the peer
(pocketsphinx) on every set of the eval manifest, on noisy versions of it (SNR 20/10/5/0 dB), and on
a held-out-voice synthetic set; measures single-thread RTF of INT8 and fp32 in one interleaved run;
writes ``docs/benchmarks/model.json`` + ``model.md`` and regenerates ``docs/model-card.md`` from
the JSON. See ``models.evaluation`` for what each number means.

    edgescribe bench model                          # full run, a few minutes of CPU
    edgescribe bench model --quick                  # 10 utterances per set, outputs under build/
    edgescribe bench model --eval-manifest edgescribe/samples/samples.jsonl --no-noise --no-peer

``--quick`` never overwrites the committed docs unless output paths are given explicitly.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Final

from edgescribe.cli import UserError

DEFAULT_EVAL: Final = Path("../shared/data/speech/eval.jsonl")
DEFAULT_NOISE: Final = Path("../shared/data/speech/noise")
DEFAULT_TRAIN: Final = (
    (Path("../shared/data/speech/train.jsonl"), "train"),
    (Path("data/synth/manifest.jsonl"), "synthetic-train"),
)
DEFAULT_JSON: Final = Path("docs/benchmarks/model.json")
DEFAULT_MARKDOWN: Final = Path("docs/benchmarks/model.md")
DEFAULT_CARD: Final = Path("docs/model-card.md")
QUICK_DIR: Final = Path("build/bench-quick")
QUICK_LIMIT: Final = 10


def add_model_subcommand(bench_subparsers: Any) -> None:
    """``edgescribe bench model``: ``edgescribe.commands.bench`` calls this with its sub-parsers."""
    parser = bench_subparsers.add_parser(
        "model",
        help="benchmark the acoustic models (CER/WER, noise, held-out voices, peer, speed)",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    add_arguments(parser)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    data = parser.add_argument_group("data")
    data.add_argument("--eval-manifest", type=Path, default=DEFAULT_EVAL, metavar="JSONL")
    data.add_argument("--noise-dir", type=Path, default=DEFAULT_NOISE, metavar="DIR")
    data.add_argument("--no-noise", action="store_true", help="skip the noisy conditions")
    data.add_argument("--snr", type=float, nargs="+", default=[20.0, 10.0, 5.0, 0.0], metavar="DB")
    data.add_argument("--noise-seed", type=int, default=2026)
    data.add_argument(
        "--heldout-dir",
        type=Path,
        default=Path("data/heldout"),
        metavar="DIR",
        help="held-out-voice cache (rendered with flite/festival/pico when missing)",
    )
    data.add_argument(
        "--heldout-manifest",
        type=Path,
        default=None,
        metavar="JSONL",
        help="use this manifest as the held-out-voice set instead of rendering one",
    )
    data.add_argument("--heldout-sentences", type=int, default=60, metavar="N")
    data.add_argument("--no-heldout", action="store_true", help="skip the held-out-voice set")
    data.add_argument(
        "--train-manifest",
        type=Path,
        action="append",
        default=None,
        metavar="JSONL",
        help="training manifest to summarise on the card (repeatable; default: shared train "
        "set + data/synth)",
    )

    systems = parser.add_argument_group("systems")
    systems.add_argument(
        "--model",
        type=Path,
        action="append",
        default=None,
        metavar="DIR",
        help="model folder (repeatable; default: released edgescribe-edge and edgescribe-cloud)",
    )
    systems.add_argument("--no-peer", action="store_true", help="do not run pocketsphinx")
    systems.add_argument(
        "--peer-noisy", action="store_true", help="also run the peer on the noisy conditions"
    )

    run = parser.add_argument_group("run")
    run.add_argument("--quick", action="store_true", help=f"{QUICK_LIMIT} utterances per set")
    run.add_argument("--limit", type=int, default=None, metavar="N", help="utterances per set")
    run.add_argument(
        "--threads", type=int, default=1, help="intra-op threads for the accuracy passes (1)"
    )
    run.add_argument("--speed-rounds", type=int, default=None, metavar="N")
    run.add_argument("--speed-seconds", type=float, default=None, metavar="S")

    out = parser.add_argument_group("output")
    out.add_argument("--out-json", type=Path, default=None, metavar="PATH")
    out.add_argument("--out-md", type=Path, default=None, metavar="PATH")
    out.add_argument("--model-card", type=Path, default=None, metavar="PATH")
    parser.set_defaults(handler=run_command)


def _outputs(args: argparse.Namespace) -> tuple[Path, Path, Path]:
    if args.quick:
        defaults = (
            QUICK_DIR / "model.json",
            QUICK_DIR / "model.md",
            QUICK_DIR / "model-card.md",
        )
    else:
        defaults = (DEFAULT_JSON, DEFAULT_MARKDOWN, DEFAULT_CARD)
    return (
        args.out_json or defaults[0],
        args.out_md or defaults[1],
        args.model_card or defaults[2],
    )


def _heldout_manifest(args: argparse.Namespace) -> tuple[Path | None, int | None]:
    from models.evaluation.heldout import HELDOUT_SEED, HeldOutSetError, build_heldout_set

    if args.no_heldout:
        return None, None
    if args.heldout_manifest is not None:
        return args.heldout_manifest, None
    try:
        return build_heldout_set(args.heldout_dir, count=args.heldout_sentences), HELDOUT_SEED
    except HeldOutSetError as exc:
        raise UserError(f"held-out-voice set: {exc} (pass --no-heldout to skip it)") from exc


def run_command(args: argparse.Namespace) -> int:
    from edgescribe.progress import ProgressBar
    from models.evaluation.benchmark import BenchmarkOptions, run_benchmark
    from models.evaluation.manifests import ManifestError
    from models.evaluation.model_card import render_model_card
    from models.evaluation.noise import NoiseBankError
    from models.evaluation.recognizers import PeerUnavailableError
    from models.evaluation.report import CLEAN, noise_curve_table, render_markdown, score_table
    from models.evaluation.targets import targets_table
    from models.runtime.artifacts import (
        CLOUD_MODEL_NAME,
        DEFAULT_MODEL_NAME,
        ModelArtifactError,
        released_model_dir,
    )

    limit = args.limit if args.limit is not None else (QUICK_LIMIT if args.quick else None)
    if limit is not None and limit < 1:
        raise UserError("--limit must be at least 1")
    if args.threads < 1:
        raise UserError("--threads must be at least 1")
    model_dirs = args.model or [
        released_model_dir(DEFAULT_MODEL_NAME),
        released_model_dir(CLOUD_MODEL_NAME),
    ]
    json_path, markdown_path, card_path = _outputs(args)
    heldout_manifest, heldout_seed = _heldout_manifest(args)
    train_manifests = (
        [(path, "train") for path in args.train_manifest]
        if args.train_manifest
        else list(DEFAULT_TRAIN)
    )
    synthetic = next((p for p, role in train_manifests if role == "synthetic-train"), None)
    options = BenchmarkOptions(
        eval_manifest=args.eval_manifest,
        model_dirs=model_dirs,
        noise_dir=None if args.no_noise else args.noise_dir,
        snr_db=[] if args.no_noise else args.snr,
        noise_seed=args.noise_seed,
        heldout_manifest=heldout_manifest,
        heldout_seed=heldout_seed,
        peer=not args.no_peer,
        peer_noisy=args.peer_noisy,
        limit=limit,
        quick=args.quick,
        threads=args.threads,
        speed_rounds=args.speed_rounds or (2 if args.quick else 5),
        speed_seconds=args.speed_seconds or (10.0 if args.quick else 60.0),
        data_manifests=train_manifests,
        synthetic_training_manifest=synthetic,
        progress=lambda label, total: ProgressBar(total, label),
    )
    try:
        report = run_benchmark(options)
    except ModelArtifactError as exc:
        raise UserError(f"cannot load a model: {exc}") from exc
    except ManifestError as exc:
        raise UserError(str(exc)) from exc
    except NoiseBankError as exc:
        raise UserError(f"noise: {exc} (pass --no-noise to skip the noisy conditions)") from exc
    except PeerUnavailableError as exc:
        raise UserError(f"{exc} (or pass --no-peer)") from exc

    for path, text in (
        (json_path, report.to_json()),
        (markdown_path, render_markdown(report)),
        (card_path, render_model_card(report)),
    ):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")

    print(score_table(report, CLEAN))
    print()
    print(noise_curve_table(report))
    print()
    print(score_table(report, "heldout"))
    print()
    print(targets_table(report))
    print()
    print(f"wrote {json_path}, {markdown_path}, {card_path} ({report.wall_seconds:.0f} s)")
    return 0
