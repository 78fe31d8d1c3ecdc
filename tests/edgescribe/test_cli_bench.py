"""``edgescribe bench serving`` end to end, shrunk to a few short points (real Triton)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from edgescribe.cli import main
from models.runtime.artifacts import CLOUD_MODEL_NAME, released_model_dir


@pytest.mark.triton
@pytest.mark.slow
def test_bench_serving_writes_json_and_markdown_for_every_system(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if not (released_model_dir(CLOUD_MODEL_NAME) / "manifest.json").is_file():
        pytest.skip("no released cloud model")

    status = main(
        [
            "bench",
            "serving",
            "--window",
            "0.5",
            "--warmup",
            "0.2",
            "--concurrency",
            "1,4",
            "--systems",
            "triton-dynamic-batching,triton-dynamic-batching-priority,"
            "triton-no-batching,onnxruntime-direct",
            "--out",
            str(tmp_path),
        ]
    )

    assert status == 0
    report = json.loads((tmp_path / "serving.json").read_text())
    systems = {p["system"] for p in report["points"]}
    assert systems == {
        "triton-dynamic-batching",
        "triton-dynamic-batching-priority",
        "triton-no-batching",
        "onnxruntime-direct",
    }
    assert {p["concurrency"] for p in report["points"]} == {1, 4}
    assert all(p["completed"] > 0 and p["errors"] == 0 for p in report["points"])
    assert [r["concurrency"] for r in report["dynamic_batching_vs_off"]["per_concurrency"]] == [
        1,
        4,
    ]
    markdown = (tmp_path / "serving.md").read_text()
    assert "| 4 | triton-dynamic-batching |" in markdown
    assert "wrote" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "reason"),
    [
        (["--concurrency", "1,x"], "comma-separated integers"),
        (["--concurrency", "0"], "must be >= 1"),
        (["--systems", "triton-turbo"], "unknown \\['triton-turbo'\\]"),
        (["--window", "0"], "--window must be > 0"),
    ],
)
def test_bench_serving_rejects_bad_flags_with_a_reason(
    argv: list[str], reason: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(["bench", "serving", "--out", str(tmp_path), *argv])

    assert status == 2
    assert not list(tmp_path.iterdir())
    assert re.search(reason, capsys.readouterr().err)
