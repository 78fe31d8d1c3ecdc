"""Demo clips with their reference texts: a fair first look at the model, shipped with the package.

The clips are speech from flite's ``slt`` voice, a voice held out of training, stored in the
formats users upload (WAV 16 kHz, FLAC 44.1 kHz stereo, OGG/Vorbis, MP3, M4A/AAC).
``samples.jsonl`` lists them in the eval-manifest shape (``audio`` relative to this folder,
``text``, ``set``), so ``edgescribe eval`` scores them directly. ``make_samples.py`` regenerates
them (it needs flite, which tests and users do not).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

SAMPLES_DIR = Path(__file__).resolve().parent
SAMPLES_MANIFEST = SAMPLES_DIR / "samples.jsonl"


@dataclass(frozen=True)
class Sample:
    path: Path
    text: str


def list_samples() -> list[Sample]:
    """The committed demo clips, in manifest order."""
    samples = []
    for line in SAMPLES_MANIFEST.read_text(encoding="utf-8").splitlines():
        if line.strip():
            entry = json.loads(line)
            samples.append(Sample(path=SAMPLES_DIR / entry["audio"], text=entry["text"]))
    return samples
