"""``edgescribe demo`` end to end, as a user runs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from edgescribe.samples import list_samples

#: The console script users run (``python -m edgescribe.cli`` would load the CLI twice, as
#: ``__main__`` and as ``edgescribe.cli``, and its ``UserError`` handling would not match).
EDGESCRIBE = [str(Path(sys.executable).parent / "edgescribe")]


@pytest.mark.slow
def test_demo_runs_every_step_and_shows_real_results() -> None:
    result = subprocess.run(
        [*EDGESCRIBE, "demo"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    output = result.stdout
    assert result.returncode == 0, output + result.stderr
    assert "all steps passed" in output
    for sample in list_samples():
        assert f"reference   {sample.text}" in output
        assert sample.path.name in output
    assert "corpus CER" in output
    assert "corrupt_audio" in output
    assert "truncated" in output  # the interrupted upload's reason
    assert "stack shut down" in output


def test_demo_rejects_an_unknown_step() -> None:
    result = subprocess.run(
        [*EDGESCRIBE, "demo", "--steps", "teleport"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 2
    assert "unknown demo step" in result.stderr
    assert "batch" in result.stderr
