"""The serving runtime must never pull in torch (Lambda images and devices do not have it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]

PROBE = """
import importlib, pkgutil, sys
import models.runtime
names = [m.name for m in pkgutil.walk_packages(models.runtime.__path__, "models.runtime.")]
for name in names:
    importlib.import_module(name)
import edgescribe.commands.transcribe, edgescribe.commands.evaluate
assert len(names) >= 10, names
heavy = sorted(m for m in sys.modules if m == "torch" or m.startswith("torch."))
print("IMPORTED", len(names), "HEAVY", heavy)
"""


def test_importing_every_runtime_module_never_imports_torch() -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=REPO_ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "HEAVY []" in result.stdout, result.stdout
