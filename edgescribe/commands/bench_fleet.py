"""``edgescribe bench fleet``: N edge agents through canary, full rollout and a broken release.

The simulation lives in ``edge.fleet`` (also ``edgescribe-agent bench-fleet``); this module only
plugs it into ``edgescribe bench`` and writes ``docs/benchmarks/fleet.json`` + ``fleet.md``.
"""

from __future__ import annotations

from typing import Any


def add_fleet_subcommand(bench_subparsers: Any) -> None:
    from edge.fleet import add_arguments, run_from_arguments

    parser = bench_subparsers.add_parser(
        "fleet", help="N edge agents against the local stack: canary, full rollout, broken model"
    )
    add_arguments(parser)
    parser.set_defaults(handler=run_from_arguments)
