"""A tiny speech-shaped corpus written per test: tones + noise with short texts, in manifest form.

The trainer's machinery (DDP, SageMaker entry point, pruning fine-tune) is what these tests check,
not accuracy, so the audio only has to be valid 16 kHz clips long enough for CTC (30 ms frames).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

WORDS = ["yes", "no", "go", "stop", "up", "down", "left", "right"]


def write_tiny_corpus(folder: Path, count: int = 8, seed: int = 0) -> Path:
    """``count`` clips of 0.6-1.2 s with one word each; returns the manifest path."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(count):
        seconds = float(rng.uniform(0.6, 1.2))
        t = np.arange(int(16_000 * seconds)) / 16_000
        tone = 0.3 * np.sin(2 * np.pi * (200 + 60 * i) * t) + 0.05 * rng.standard_normal(t.size)
        name = f"clip{i:02d}.wav"
        sf.write(folder / name, tone.astype(np.float32), 16_000, subtype="PCM_16")
        rows.append({"audio": name, "text": WORDS[i % len(WORDS)], "set": "tiny", "speaker": "t"})
    manifest = folder / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return manifest


@pytest.fixture
def tiny_manifest(tmp_path: Path) -> Path:
    return write_tiny_corpus(tmp_path / "corpus")
