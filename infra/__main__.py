"""Entry point ``pulumi up`` runs (``Pulumi.yaml``: ``main: infra/``).

Pulumi runs this file with ``infra/`` as the working directory and first on ``sys.path``; the
repository root goes first instead, so ``infra``, ``edgescribe`` and ``models`` import as the packages
they are (and nothing in ``infra/`` shadows a top-level module).
"""

from __future__ import annotations

import sys
from pathlib import Path

_INFRA = Path(__file__).resolve().parent
_ROOT = _INFRA.parent
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != _INFRA]
sys.path.insert(0, str(_ROOT))

import pulumi  # noqa: E402

from infra.program import build_platform, stack_outputs  # noqa: E402
from infra.stack_config import load_config  # noqa: E402

platform = build_platform(load_config())
for output_name, value in stack_outputs(platform).items():
    pulumi.export(output_name, value)
