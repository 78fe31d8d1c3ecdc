"""Smoke test: does this model directory actually transcribe? Run in a child process.

A signed, hash-verified model can still be broken (a bad export, a quantization that maps
everything to blank, an operator this device's onnxruntime lacks). Before the pointer moves, the
agent loads the staged slot *the way the router will* and transcribes a bundled clip. It passes
only if the process exits cleanly, in time, with a non-empty transcript (and, when
``smoke_max_cer`` is set, close enough to the clip's known text).

Why a child process: a model that segfaults onnxruntime, leaks memory or hangs must kill the
smoke test, not the agent. The parent enforces a timeout and reads one JSON line from stdout.

Run by hand: ``python -m edge.smoke --model-dir /var/lib/edgescribe/slots/b``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from edge.config import SMOKE_CLIP, SMOKE_CLIP_TEXT
from edge.errors import SmokeTestFailedError

_PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class SmokeResult:
    text: str
    seconds: float
    cer: float | None


def run_smoke_test(
    model_dir: Path,
    *,
    clip: Path = SMOKE_CLIP,
    max_cer: float | None = None,
    timeout_seconds: float = 120.0,
    intra_op_threads: int = 1,
) -> SmokeResult:
    """Smoke-test ``model_dir`` in a child process; ``SmokeTestFailedError`` says why it failed."""
    command = [
        sys.executable,
        "-m",
        "edge.smoke",
        "--model-dir",
        str(model_dir),
        "--clip",
        str(clip),
        "--threads",
        str(intra_op_threads),
    ]
    if max_cer is not None:
        command += ["--max-cer", str(max_cer)]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(_PROJECT_ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    try:
        finished = subprocess.run(
            command, capture_output=True, timeout=timeout_seconds, env=env, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise SmokeTestFailedError(f"smoke test did not finish in {timeout_seconds:.0f}s") from exc
    last_line = finished.stdout.decode(errors="replace").strip().splitlines()[-1:] or [""]
    try:
        report = json.loads(last_line[0])
    except ValueError:
        report = None
    if finished.returncode != 0 or not isinstance(report, dict) or not report.get("ok"):
        reason = (report or {}).get("error") if isinstance(report, dict) else None
        if not reason:
            tail = finished.stderr.decode(errors="replace").strip().splitlines()[-1:] or [
                "no output"
            ]
            reason = f"exit status {finished.returncode}: {tail[0][:300]}"
        raise SmokeTestFailedError(f"smoke test of {model_dir} failed: {reason}")
    return SmokeResult(
        text=str(report["text"]), seconds=float(report["seconds"]), cer=report.get("cer")
    )


def smoke_in_this_process(
    model_dir: Path, clip: Path, max_cer: float | None, intra_op_threads: int
) -> SmokeResult:
    """The check itself (what the child runs)."""
    from edge.local_engine import load_local_transcriber
    from models.runtime.audio import decode_audio

    started = time.monotonic()
    transcriber = load_local_transcriber(model_dir, intra_op_threads=intra_op_threads)
    transcript = transcriber.transcribe(decode_audio(clip, name=clip.name), transcript_id="smoke")
    text = transcript.text.strip()
    if not text:
        raise SmokeTestFailedError("the model transcribed the smoke clip as empty text")
    cer = None
    if max_cer is not None:
        from models.runtime.scoring import cer as character_error_rate

        expected = _expected_text(clip)
        cer = character_error_rate(expected, text)
        if cer > max_cer:
            raise SmokeTestFailedError(
                f"smoke clip CER {cer:.2f} is above the limit {max_cer:.2f} (heard {text!r})"
            )
    return SmokeResult(text=text, seconds=time.monotonic() - started, cer=cer)


def _expected_text(clip: Path) -> str:
    sidecar = clip.with_suffix(".txt")
    if sidecar.is_file():
        return sidecar.read_text().strip()
    return SMOKE_CLIP_TEXT.read_text().strip()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edge.smoke", description=__doc__)
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--clip", type=Path, default=SMOKE_CLIP)
    parser.add_argument("--max-cer", type=float, default=None)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    try:
        result = smoke_in_this_process(args.model_dir, args.clip, args.max_cer, args.threads)
    except Exception as exc:  # every failure of the model is a failed smoke test, reported
        print(json.dumps({"ok": False, "error": f"{type(exc).__name__}: {exc}"[:500]}))
        return 1
    print(
        json.dumps({"ok": True, "text": result.text, "seconds": result.seconds, "cer": result.cer})
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
