"""Regenerate the learning-loop clips in ``models/learning/clips/``.

Run from the repository root (needs the ``flite`` and ``espeak-ng`` binaries, which tests never
need)::

    python -m models.learning.make_clips

Three sets, each a manifest in the eval shape (``audio``, ``text``, ``set``):

- ``corrections.jsonl``: a domain the released model has never heard (drug names; none occurs in
  the training text), spoken by flite ``rms``, a *training* voice, so what the loop has to learn
  is the vocabulary, not the speaker. The loop's end-to-end test sends these as user corrections.
- ``domain_eval.jsonl``: the same drug names in carrier sentences that ``corrections`` never uses:
  the gate's "better on the domain" is measured on sentences the candidate was not trained on.
- ``replay.jsonl``: general sentences from the synthetic-corpus generator in several training
  voices. Fine-tuning mixes them in so the candidate does not forget general speech.
- ``real_replay.jsonl`` / ``real_general.jsonl``: human speech from the TRAINING sets of
  ``../shared/data/speech/train.jsonl`` (CMU AN4 train: BSD-style; speechocean762: CC-BY-4.0;
  moonshine alnum: MIT; each line keeps its ``source`` and ``license``). The first is replayed
  during fine-tuning; the second is a general set the gate checks for forgetting (utterances the
  released model was trained on, so it measures forgetting, not generalization). FSDD (CC-BY-SA)
  is left out so the repository carries no share-alike material. ``--shared DIR`` points at it.

Held-out voices (pico, flite ``slt``, festival ``cmu_us_slt_arctic_hts``) are never used here.
Clips are 16 kHz mono OGG/Vorbis (about 10 kB each): lossy, but training never saw anything
cleaner than that from a phone either, and the repository stays cheap to clone.
"""

from __future__ import annotations

import json
import random
import subprocess
import tempfile
from pathlib import Path

import soundfile

from models.runtime.audio import decode_audio

LOOP_DIR = Path(__file__).resolve().parent / "clips"

DRUGS = (
    "amoxicillin",
    "ibuprofen",
    "metformin",
    "lisinopril",
    "atorvastatin",
    "omeprazole",
    "prednisone",
    "warfarin",
)
#: Carriers for the corrections (training) set.
TRAIN_CARRIERS = (
    "the patient takes {} twice a day",
    "please refill the {} prescription",
    "start {} ten milligrams tonight",
    "stop the {} before the surgery",
)
#: Carriers only the domain evaluation set uses.
EVAL_CARRIERS = (
    "she was given {} yesterday",
    "is he still on {}",
)
DOMAIN_VOICE = "rms"
REPLAY_VOICES = (("flite", "kal16"), ("flite", "awb"), ("espeak", "en-us+m3"), ("espeak", "en"))
REPLAY_COUNT = 48
#: Human training speech per set: (replay clips, general-gate clips).
REAL_SETS = {"an4_train": (24, 16), "speechocean762": (16, 8), "moonshine_alnum": (8, 0)}
REAL_SEED = 20261126


def _render(engine: str, voice: str, text: str, out: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "x.wav"
        if engine == "flite":
            command = ["flite", "-voice", voice, "-t", text, "-o", str(wav)]
        else:
            command = ["espeak-ng", "-v", voice, "-s", "160", "-w", str(wav), text]
        subprocess.run(command, check=True, capture_output=True, timeout=60)
        audio = decode_audio(wav.read_bytes(), name=text)
        soundfile.write(
            out, audio.samples, 16_000, format="OGG", subtype="VORBIS", compression_level=0.9
        )


def _write_set(name: str, rows: list[tuple[str, str, str]]) -> None:
    """``rows``: (engine, voice, text) rendered to ``<name>-NNN.ogg`` plus ``<name>.jsonl``."""
    lines = []
    for index, (engine, voice, text) in enumerate(rows):
        filename = f"{name}-{index:03d}.ogg"
        _render(engine, voice, text, LOOP_DIR / filename)
        lines.append(
            json.dumps({"audio": filename, "text": text, "set": name, "voice": f"{engine} {voice}"})
        )
    (LOOP_DIR / f"{name}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")


def _write_real_sets(shared: Path) -> None:
    """Copy human training clips (16 kHz OGG) with their source and licence lines."""
    manifest = shared / "train.jsonl"
    rows = [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()]
    rng = random.Random(REAL_SEED)
    chosen: dict[str, list[dict[str, object]]] = {"real_replay": [], "real_general": []}
    for set_name, (replay_count, general_count) in REAL_SETS.items():
        # multi-word utterances teach more than single letters; 1.5-8 s keeps batches small
        pool = [
            row for row in rows if row["set"] == set_name and 1.5 <= float(row["duration"]) <= 8.0
        ] or [row for row in rows if row["set"] == set_name]
        picked = rng.sample(pool, replay_count + general_count)
        chosen["real_replay"] += picked[:replay_count]
        chosen["real_general"] += picked[replay_count:]
    for name, picked in chosen.items():
        lines = []
        for index, row in enumerate(picked):
            filename = f"{name}-{index:03d}.ogg"
            audio = decode_audio(shared / str(row["audio"]))
            soundfile.write(
                LOOP_DIR / filename,
                audio.samples,
                16_000,
                format="OGG",
                subtype="VORBIS",
                compression_level=0.9,
            )
            entry = {
                "audio": filename,
                "text": row["text_norm"],
                "set": name,
                "voice": f"human ({row['speaker']}, {row['set']})",
                "license": row["license"],
                "source": row["source"],
            }
            lines.append(json.dumps(entry))
        (LOOP_DIR / f"{name}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> None:
    import argparse

    from models.data.sentences import SentenceGenerator

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shared", type=Path, default=Path("../shared/data/speech"))
    parser.add_argument("--only-real", action="store_true", help="only the human-speech sets")
    args = parser.parse_args()
    LOOP_DIR.mkdir(exist_ok=True)
    _write_real_sets(args.shared)
    if args.only_real:
        return

    corrections = [
        ("flite", DOMAIN_VOICE, carrier.format(drug))
        for carrier in TRAIN_CARRIERS
        for drug in DRUGS
    ]
    domain_eval = [
        ("flite", DOMAIN_VOICE, carrier.format(drug))
        for index, drug in enumerate(DRUGS)
        for carrier in (EVAL_CARRIERS[index % len(EVAL_CARRIERS)],)
    ]
    generator = SentenceGenerator(seed=20261125)
    rng = random.Random(20261125)
    replay = [
        (*rng.choice(REPLAY_VOICES), generator.sentence().lower()) for _ in range(REPLAY_COUNT)
    ]
    _write_set("corrections", corrections)
    _write_set("domain_eval", domain_eval)
    _write_set("replay", replay)


if __name__ == "__main__":
    main()
