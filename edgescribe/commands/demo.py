"""``edgescribe demo``: start everything on free ports, show each part working, shut it all down."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from edgescribe.cli import UserError


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run the platform end to end on this machine (local stack, sample clips)",
        description="Starts a moto server, the stack's resources, the queue poller, the API "
        "function and Triton on free ports, runs each demo step (batch transcription, the HTTP "
        "API, Triton serving, an edge device, one learning-loop turn) and shuts everything down.",
    )
    parser.add_argument(
        "--steps",
        default=None,
        help="comma-separated step names to run (default: all, in order: batch,api,triton,edge,loop)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="seconds all steps together may wait for results (default: 600)",
    )
    parser.add_argument(
        "--models",
        type=Path,
        default=None,
        metavar="DIR",
        help="run these models instead of the released ones: a folder with edgescribe-edge/ and "
        "edgescribe-cloud/ (what models.export.onnx_export --out-dir DIR writes)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from edgescribe.demo.runner import DEFAULT_TIMEOUT_SECONDS, DemoSetupError, run_demo

    timeout = DEFAULT_TIMEOUT_SECONDS if args.timeout is None else args.timeout
    if timeout <= 0:
        raise UserError(f"--timeout must be positive, got {timeout}")
    if args.models is not None and not args.models.is_dir():
        raise UserError(f"--models {args.models}: no such folder")
    step_names = (
        [name.strip() for name in args.steps.split(",") if name.strip()] if args.steps else None
    )
    try:
        return run_demo(
            out=sys.stdout, step_names=step_names, timeout=timeout, models_dir=args.models
        )
    except DemoSetupError as exc:
        raise UserError(str(exc)) from exc
