"""``edgescribe demo``: start everything on free ports, show each part working, shut it all down."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from edgescribe.cli import UserError


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run the platform end to end on this machine (local stack, sample clips)",
        description="Starts a moto server, the stack's resources and the queue poller on free "
        "ports, runs each demo step (batch transcription first) and shuts everything down.",
    )
    parser.add_argument(
        "--steps",
        default=None,
        help="comma-separated step names to run (default: all, in order)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=120.0,
        help="seconds all steps together may wait for results (default: 120)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from edgescribe.demo.runner import DemoSetupError, run_demo

    if args.timeout <= 0:
        raise UserError(f"--timeout must be positive, got {args.timeout}")
    step_names = (
        [name.strip() for name in args.steps.split(",") if name.strip()] if args.steps else None
    )
    try:
        return run_demo(out=sys.stdout, step_names=step_names, timeout=args.timeout)
    except DemoSetupError as exc:
        raise UserError(str(exc)) from exc
