"""Load training manifests into memory once (16 kHz int16), with their token ids.

Why a cache: decoding thousands of FLAC files every epoch would cost more CPU than the model on a
2-core machine. ``build_cache`` writes one ``.npz`` per manifest; training memory-maps nothing and
simply holds ~7 h of int16 audio (~0.8 GB).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import soundfile as sf

from models.runtime.resample import resample
from models.runtime.vocabulary import encode, normalize_text


@dataclass
class Utterance:
    audio: npt.NDArray[np.int16]  # 16 kHz mono
    text: str
    tokens: list[int]
    set: str
    speaker: str


def read_16k(path: Path) -> npt.NDArray[np.float32]:
    audio, rate = sf.read(path, dtype="float32", always_2d=True)
    return resample(audio.mean(axis=1), rate, 16_000)


def load_manifest(manifest: Path, max_seconds: float = 16.0) -> list[Utterance]:
    rows = [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()]
    out = []
    for row in rows:
        text = normalize_text(row.get("text_norm") or row["text"])
        tokens = encode(text)
        if not tokens:
            continue
        audio = read_16k(manifest.parent / row["audio"])
        if len(audio) > max_seconds * 16_000:
            continue
        # CTC needs at least one output frame (30 ms) per token, with room for repeats.
        if len(audio) / 16_000 / 0.03 < 1.2 * len(tokens):
            continue
        pcm = np.clip(audio * 32767, -32768, 32767).astype(np.int16)
        out.append(Utterance(pcm, text, tokens, row.get("set", "?"), row.get("speaker", "?")))
    return out


def build_cache(manifest: Path, cache: Path) -> list[Utterance]:
    if cache.exists():
        data = np.load(cache, allow_pickle=True)
        return list(data["utterances"])
    utts = load_manifest(manifest)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, utterances=np.array(utts, dtype=object))
    return utts
