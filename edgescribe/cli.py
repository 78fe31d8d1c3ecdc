"""``edgescribe``: one console script, one module per subcommand under ``edgescribe.commands``.

Each command module exposes ``register(subparsers)`` that adds its parser and sets
``handler=callable(args) -> int``. Errors a user can fix (bad files, bad flags) are raised as
``UserError`` and printed on stderr with exit status 2 — never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

COMMAND_MODULES = (
    "edgescribe.commands.transcribe",
    "edgescribe.commands.evaluate",
    "edgescribe.commands.local",
    "edgescribe.commands.demo",
    "edgescribe.commands.model",
    "edgescribe.commands.bench",
    "edgescribe.commands.loop",
)


class UserError(Exception):
    """A failure the user caused and can fix; printed without a traceback."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edgescribe", description="EdgeScribe speech-to-text: cloud, edge and local stack."
    )
    subparsers = parser.add_subparsers(dest="command", required=True)
    for module_name in COMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:  # a command not written yet; the others still work
                continue
            raise
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args))
    except UserError as exc:
        print(f"edgescribe: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
