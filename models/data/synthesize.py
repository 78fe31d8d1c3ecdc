"""Build a synthetic speech corpus with Debian's TTS engines (espeak-ng, flite, festival).

Held-out voices are never used here: SVOX Pico, festival ``cmu_us_slt_arctic_hts`` and flite ``slt``
(the same speaker) exist to measure generalization to unseen voices (see ``HELD_OUT_VOICES``).
mbrola voices are excluded by licence (no use in products that are sold).

Usage::

    python -m models.data.synthesize --out data/synth --count 4000 --workers 2
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import numpy.typing as npt
import soundfile as sf

from models.data.sentences import SentenceGenerator
from models.runtime.resample import resample

HELD_OUT_VOICES = frozenset({"pico", "flite:slt", "festival:cmu_us_slt_arctic_hts"})

ESPEAK_BASES = [
    "en-us",
    "en-gb",
    "en-gb-scotland",
    "en-gb-x-rp",
    "en-029",
    "en-gb-x-gbclan",
    "en-gb-x-gbcwmd",
    "en",
]
ESPEAK_VARIANTS = [
    "",
    "+f1",
    "+f2",
    "+f3",
    "+f4",
    "+f5",
    "+m1",
    "+m2",
    "+m3",
    "+m4",
    "+m5",
    "+m6",
    "+m7",
    "+klatt",
    "+klatt2",
    "+klatt3",
    "+klatt4",
    "+croak",
    "+Andy",
    "+Annie",
    "+belinda",
    "+david",
    "+linda",
    "+steph",
    "+john",
    "+robert",
    "+paul",
    "+edward",
    "+grandma",
    "+grandpa",
    "+iven",
    "+zac",
]
FLITE_VOICES = ["kal", "kal16", "awb", "rms"]


@dataclass(frozen=True)
class Job:
    index: int
    text: str
    engine: str
    voice: str
    rate: int
    pitch: int


def _to_16k(audio: npt.NDArray[np.floating[Any]], rate: int) -> npt.NDArray[np.float32]:
    if audio.ndim > 1:
        audio = audio.mean(axis=1)
    return resample(audio, rate, 16_000)


def synthesize(job: Job, out_dir: Path) -> dict[str, object] | None:
    """Render one utterance to ``out_dir/<index>.flac`` (16 kHz mono); None if the engine failed."""
    assert f"{job.engine}:{job.voice}" not in HELD_OUT_VOICES
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "x.wav"
        if job.engine == "espeak":
            cmd = [
                "espeak-ng",
                "-v",
                job.voice,
                "-s",
                str(job.rate),
                "-p",
                str(job.pitch),
                "-w",
                str(wav),
                job.text,
            ]
        elif job.engine == "flite":
            cmd = [
                "flite",
                "-voice",
                job.voice,
                "--setf",
                f"duration_stretch={100 / job.rate:.3f}",
                "-t",
                job.text,
                "-o",
                str(wav),
            ]
        else:
            raise ValueError(job.engine)
        result = subprocess.run(cmd, capture_output=True, timeout=60, check=False)
        if result.returncode != 0 or not wav.exists():
            return None
        audio, rate = sf.read(wav, dtype="float32")
    audio = _to_16k(audio, rate)
    peak = float(np.abs(audio).max()) if audio.size else 0.0
    if peak < 1e-3:
        return None
    audio = audio / peak * 0.9
    path = out_dir / f"{job.index:06d}.flac"
    sf.write(path, audio, 16_000, format="FLAC")
    return {
        "audio": path.name,
        "text": job.text,
        "set": "synthetic",
        "speaker": f"{job.engine}:{job.voice}",
        "duration": round(len(audio) / 16_000, 3),
    }


def plan_jobs(count: int, seed: int, real_texts: list[str]) -> list[Job]:
    rng = random.Random(seed)
    sentences = SentenceGenerator(seed, real_texts)
    jobs = []
    for index in range(count):
        text = sentences.sentence()
        if rng.random() < 0.8:
            voice = rng.choice(ESPEAK_BASES) + rng.choice(ESPEAK_VARIANTS)
            jobs.append(
                Job(index, text, "espeak", voice, rng.randint(120, 210), rng.randint(25, 75))
            )
        else:
            jobs.append(
                Job(index, text, "flite", rng.choice(FLITE_VOICES), rng.randint(80, 120), 0)
            )
    return jobs


def _run(args: tuple[Job, Path]) -> dict[str, object] | None:
    return synthesize(*args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("data/synth"))
    parser.add_argument("--count", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--real-texts",
        type=Path,
        default=None,
        help="a train.jsonl whose texts are mixed into the sentence source",
    )
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    real_texts: list[str] = []
    if args.real_texts:
        for line in args.real_texts.read_text().splitlines():
            row = json.loads(line)
            if len(row.get("text_norm", "").split()) >= 3:
                real_texts.append(row["text_norm"])
    jobs = plan_jobs(args.count, args.seed, real_texts)
    rows: list[dict[str, object]] = []
    with ProcessPoolExecutor(args.workers) as pool:
        for row in pool.map(_run, [(job, args.out) for job in jobs], chunksize=16):
            if row is not None:
                rows.append(row)
    with (args.out / "manifest.jsonl").open("w") as handle:
        for row in rows:
            handle.write(json.dumps(row) + "\n")
    hours = sum(cast(float, r["duration"]) for r in rows) / 3600
    print(f"wrote {len(rows)} utterances ({hours:.2f} h) to {args.out}")


if __name__ == "__main__":
    main()
