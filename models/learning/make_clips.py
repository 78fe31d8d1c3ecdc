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


def main() -> None:
    from models.data.sentences import SentenceGenerator

    LOOP_DIR.mkdir(exist_ok=True)
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
