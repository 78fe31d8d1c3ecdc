"""``edgescribe demo`` end to end, as a user runs it: batch → API → Triton → an edge device."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from edgescribe.samples import list_samples

#: The console script users run (``python -m edgescribe.cli`` would load the CLI twice, as
#: ``__main__`` and as ``edgescribe.cli``, and its ``UserError`` handling would not match).
EDGESCRIBE = [str(Path(sys.executable).parent / "edgescribe")]


@pytest.mark.slow
@pytest.mark.triton
def test_demo_runs_every_step_and_shows_real_results() -> None:
    result = subprocess.run(
        [*EDGESCRIBE, "demo"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )

    output = result.stdout
    assert result.returncode == 0, output + result.stderr
    assert "all steps passed" in output
    # batch: every clip transcribed beside its reference; the broken upload explained
    for sample in list_samples():
        assert f"reference   {sample.text}" in output
        assert sample.path.name in output
    assert "corpus CER" in output
    assert "corrupt_audio" in output
    assert "truncated" in output  # the interrupted upload's reason
    # API: a clip answered inline, a long job finished by the batch pipeline, a stored correction
    assert re.search(r"POST /v1/transcriptions\s+\S+ \(audio/\w+\) → 200", output), output
    assert re.search(r"GET\s+/v1/transcriptions/\w+ → .*completed", output), output
    assert "stored at   s3://edgescribe-demo-feedback/feedback/" in output
    assert "401: missing Authorization header" in output
    # Triton: every concurrent request answered by Triton, counted by Triton; then the fallback
    answered = re.search(r"(\d+) requests .* (\d+) by triton", output)
    assert answered, output
    assert answered.group(1) == answered.group(2), output
    assert re.search(r"Triton statistics: inference_count \+\d+, execution_count \+\d+", output)
    assert "→ onnxruntime-cloud" in output
    assert "breaker open" in output
    # edge: a signed model installed, an offline transcript, the outbox delivered exactly once
    assert re.search(r"installed edgescribe-edge v\d+ in slot [ab]", output), output
    assert "engine      onnxruntime-edge" in output
    assert "exactly once: 1 stored version" in output
    assert "second flush sent 0" in output
    # learning loop: corrections → gated candidate → shadow → canary → stable → a device runs it
    assert "Evaluation gate PASSED: edgescribe-edge v2 vs v1" in output
    assert "gate_passed → shadow" in output
    assert "shadow → canary" in output
    assert "canary → stable" in output
    assert re.search(r"device demo-kiosk-2: offer 'update' → installed; runs v2", output), output
    assert "stack shut down" in output
    for port in _ports(output):
        assert not _listening(port), f"something still listens on {port} after the demo"


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
    for name in ("batch", "api", "triton", "edge"):
        assert name in result.stderr


def test_demo_refuses_a_models_folder_that_lacks_a_model(tmp_path: Path) -> None:
    (tmp_path / "edgescribe-edge").mkdir()
    result = subprocess.run(
        [*EDGESCRIBE, "demo", "--models", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 2, result.stdout + result.stderr
    assert "edgescribe-cloud" in result.stderr
    assert "Traceback" not in result.stderr


def _ports(output: str) -> list[int]:
    """The moto, API and Triton ports the demo printed when its stack came up."""
    found = re.findall(
        r"^\s+(?:moto server|API|Triton)\s+(?:gRPC )?(?:http://)?127\.0\.0\.1:(\d+)", output, re.M
    )
    assert len(found) == 3, output
    return [int(port) for port in found]


def _listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0
