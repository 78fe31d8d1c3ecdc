"""``edgescribe bench <what>``: the benchmarks behind every number the docs state.

``edgescribe bench serving`` measures Triton with dynamic batching, Triton without, and direct
onnxruntime on the same model at client concurrency 1..64, and writes
``docs/benchmarks/serving.json`` + ``serving.md`` (see ``functions.inference.serving_benchmark``).
Other benchmark commands (``model``, ``fleet``) plug in here when their modules exist: a module
``edgescribe.commands.bench_<what>`` exposing ``add_<what>_subcommand(bench_subparsers)``.

    edgescribe bench serving                         # about 3 minutes
    edgescribe bench serving --rounds 1 --window 1 --concurrency 1,16 --out build/bench-serving
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path
from typing import Any, Final

from edgescribe.cli import UserError

#: Mirror ``functions.inference.serving_benchmark`` (kept here so ``--help`` stays cheap).
SYSTEMS: Final = ("triton-dynamic-batching", "triton-no-batching", "onnxruntime-direct")
OPTIONAL_SYSTEMS: Final = ("triton-dynamic-batching-priority",)

DEFAULT_OUT: Final = Path("docs/benchmarks")
#: (module, function) pairs that add more ``bench`` sub-commands when present.
PLUGGED_SUBCOMMANDS: Final = (
    ("edgescribe.commands.bench_model", "add_model_subcommand"),
    ("edgescribe.commands.bench_fleet", "add_fleet_subcommand"),
)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("bench", help="run a benchmark and write its report")
    bench = parser.add_subparsers(dest="benchmark", required=True)
    serving = bench.add_parser(
        "serving",
        help="Triton with/without dynamic batching vs direct onnxruntime, concurrency 1..64",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    serving.add_argument(
        "--model",
        type=Path,
        default=None,
        metavar="DIR",
        help="model folder (default: the released fp32 cloud model)",
    )
    serving.add_argument("--concurrency", default="1,2,4,8,16,32,64", metavar="N,N,...")
    serving.add_argument(
        "--window",
        type=float,
        default=2.5,
        metavar="S",
        help="measured seconds per point and round",
    )
    serving.add_argument("--warmup", type=float, default=0.75, metavar="S")
    serving.add_argument(
        "--rounds", type=int, default=2, help="sweeps to pool (evens out background load)"
    )
    serving.add_argument("--instances", type=int, default=1, help="Triton model instances")
    serving.add_argument("--threads", type=int, default=1, help="intra-op threads per instance")
    serving.add_argument("--queue-delay-us", type=int, default=None, metavar="US")
    serving.add_argument(
        "--systems",
        default=",".join(SYSTEMS),
        metavar="NAME,...",
        help=f"which of {', '.join(SYSTEMS + OPTIONAL_SYSTEMS)} (default: the first three)",
    )
    serving.add_argument("--out", type=Path, default=DEFAULT_OUT, metavar="DIR")
    serving.set_defaults(handler=run_serving)
    for module_name, function_name in PLUGGED_SUBCOMMANDS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                continue
            raise
        add = getattr(module, function_name, None)
        if add is not None:
            add(bench)


def parse_concurrency(text: str) -> tuple[int, ...]:
    try:
        levels = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError as exc:
        raise UserError(f"--concurrency must be comma-separated integers, got {text!r}") from exc
    if not levels or min(levels) < 1:
        raise UserError(f"--concurrency levels must be >= 1, got {text!r}")
    return levels


def run_serving(args: argparse.Namespace) -> int:
    from functions.inference.serving_benchmark import (
        BenchmarkPlan,
        Point,
        render_markdown,
        run_serving_benchmark,
    )
    from models.runtime.artifacts import CLOUD_MODEL_NAME, released_model_dir
    from models.triton.spec import DynamicBatching

    model_dir = args.model or released_model_dir(CLOUD_MODEL_NAME)
    if not (model_dir / "manifest.json").is_file():
        raise UserError(f"{model_dir}: no manifest.json (not a released model folder)")
    if args.window <= 0 or args.warmup < 0 or min(args.instances, args.threads, args.rounds) < 1:
        raise UserError(
            "--window must be > 0, --warmup >= 0, --instances, --threads and --rounds >= 1"
        )
    batching = DynamicBatching()
    if args.queue_delay_us is not None:
        batching = DynamicBatching(
            preferred_batch_sizes=batching.preferred_batch_sizes,
            max_queue_delay_microseconds=args.queue_delay_us,
        )
    systems = tuple(name.strip() for name in args.systems.split(",") if name.strip())
    known = SYSTEMS + OPTIONAL_SYSTEMS
    unknown = sorted(set(systems) - set(known))
    if unknown or not systems:
        raise UserError(f"--systems: unknown {unknown}; choose from {', '.join(known)}")
    plan = BenchmarkPlan(
        model_dir=model_dir,
        concurrency=parse_concurrency(args.concurrency),
        window_seconds=args.window,
        warmup_seconds=args.warmup,
        rounds=args.rounds,
        instances=args.instances,
        intra_op_threads=args.threads,
        batching=batching,
        systems=systems,
    )

    def progress(point: Point) -> None:
        print(
            f"c={point.concurrency:>3} {point.system:<24} {point.throughput_rps:8.1f} req/s  "
            f"p50 {point.p50_ms:7.1f}  p95 {point.p95_ms:7.1f}  p99 {point.p99_ms:7.1f} ms"
            + ("" if point.mean_batch_size is None else f"  batch {point.mean_batch_size:.2f}")
            + (f"  errors {point.errors}" if point.errors else ""),
            file=sys.stderr,
            flush=True,
        )

    report = run_serving_benchmark(plan, progress)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "serving.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / "serving.md").write_text(render_markdown(report))
    target = report["dynamic_batching_vs_off"]["target"]
    print(
        f"wrote {args.out / 'serving.json'} and {args.out / 'serving.md'}; dynamic batching "
        f"target {'met' if target['met'] else 'not met'} (lowest ratio at concurrency >= "
        f"{target['at_concurrency_from']}: {target['min_throughput_ratio_at_target_concurrency']}x)"
    )
    return 0
