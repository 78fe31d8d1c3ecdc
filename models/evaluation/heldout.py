"""A held-out-VOICE synthetic test set: voices the model never heard, texts drawn afresh.

The training corpus (``models.data.synthesize``) excludes these voices by name
(``HELD_OUT_VOICES``); this module is the only place that renders them, and only into the
evaluation cache ``data/heldout/`` (git-ignored). Never train or tune on it.

Voices, each rendered if its engine is installed (the others are skipped and the manifest says
which ran): flite ``slt``; festival ``cmu_us_slt_arctic_hts`` (Debian ``festvox-us-slt-hts``, the
same speaker as flite ``slt`` through a different synthesiser); SVOX Pico ``en-US`` (``pico2wave``,
Debian non-free). Every voice reads the same sentences, so per-voice rows are comparable.

Texts come from ``models.data.sentences.SentenceGenerator`` with ``HELDOUT_SEED``, a seed the
training corpus does not use. The *templates* are the training ones, so this set measures voice
generalisation, not vocabulary generalisation; the benchmark reports how many held-out sentences
also occur verbatim in the training corpus.

The cache is reused while ``meta.json`` matches (seed, count, voices); otherwise it is rebuilt.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np

from edgescribe.settings import SAMPLE_RATE

HELDOUT_SEED: Final = 20_261_125
DEFAULT_SENTENCES: Final = 60
DEFAULT_HELDOUT_DIR: Final = Path("data/heldout")
MANIFEST_NAME: Final = "manifest.jsonl"
META_NAME: Final = "meta.json"
#: Peak level the clips are normalised to (the synthetic training clips use the same).
PEAK: Final = 0.9
SYNTH_TIMEOUT_SECONDS: Final = 60


class HeldOutSetError(RuntimeError):
    """No held-out voice could be rendered (no engine installed, or every engine failed)."""


@dataclass(frozen=True)
class HeldOutVoice:
    """A voice kept out of training; ``voice_id`` matches ``models.data.synthesize.HELD_OUT_VOICES``."""

    set_name: str
    voice_id: str
    engine: str  # "flite" | "festival" | "pico"
    voice: str

    def available(self) -> bool:
        if self.engine == "flite":
            return shutil.which("flite") is not None
        if self.engine == "festival":
            return shutil.which("text2wave") is not None and any(
                Path("/usr/share/festival/voices").glob(f"*/{self.voice}")
            )
        if self.engine == "pico":
            return shutil.which("pico2wave") is not None
        return False

    def command(self, text_file: Path, text: str, wav: Path) -> list[str]:
        if self.engine == "flite":
            return ["flite", "-voice", self.voice, "-f", str(text_file), "-o", str(wav)]
        if self.engine == "festival":
            return ["text2wave", "-eval", f"(voice_{self.voice})", "-o", str(wav), str(text_file)]
        if self.engine == "pico":
            return ["pico2wave", "-l", self.voice, "-w", str(wav), text]
        raise ValueError(f"unknown TTS engine {self.engine!r}")


HELDOUT_VOICES: Final = (
    HeldOutVoice("heldout_flite_slt", "flite:slt", "flite", "slt"),
    HeldOutVoice(
        "heldout_festival_slt_hts",
        "festival:cmu_us_slt_arctic_hts",
        "festival",
        "cmu_us_slt_arctic_hts",
    ),
    HeldOutVoice("heldout_pico_en_us", "pico", "pico", "en-US"),
)


def heldout_sentences(count: int = DEFAULT_SENTENCES, seed: int = HELDOUT_SEED) -> list[str]:
    """``count`` distinct sentences from the training sentence generator under a fresh seed."""
    from models.data.sentences import SentenceGenerator
    from models.runtime.vocabulary import normalize_text

    generator = SentenceGenerator(seed)
    sentences: list[str] = []
    seen: set[str] = set()
    for _ in range(count * 20):
        sentence = generator.sentence()
        key = normalize_text(sentence)
        if key and key not in seen:
            seen.add(key)
            sentences.append(sentence)
            if len(sentences) == count:
                return sentences
    raise HeldOutSetError(f"the sentence generator gave fewer than {count} distinct sentences")


def render(voice: HeldOutVoice, text: str, out_path: Path) -> float | None:
    """Synthesize ``text`` to a 16 kHz mono FLAC; its duration, or None if the engine failed.

    festival exits 0 even when a voice is missing (it prints ``SIOD ERROR`` and writes nothing),
    so success means: exit 0, no SIOD error, and a decodable, non-silent file.
    """
    import soundfile

    from models.runtime.audio import AudioDecodeError, decode_audio

    with tempfile.TemporaryDirectory() as tmp:
        text_file, wav = Path(tmp) / "text.txt", Path(tmp) / "speech.wav"
        text_file.write_text(text + "\n", encoding="utf-8")
        try:
            result = subprocess.run(
                voice.command(text_file, text, wav),
                capture_output=True,
                timeout=SYNTH_TIMEOUT_SECONDS,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        if result.returncode != 0 or b"SIOD ERROR" in result.stderr or not wav.is_file():
            return None
        try:
            samples = decode_audio(wav).samples
        except AudioDecodeError:
            return None
    peak = float(np.max(np.abs(samples))) if samples.size else 0.0
    if peak < 1e-3:
        return None
    soundfile.write(out_path, samples / peak * PEAK, SAMPLE_RATE, format="FLAC")
    return round(samples.size / SAMPLE_RATE, 3)


def _meta(count: int, seed: int, voices: Sequence[HeldOutVoice]) -> dict[str, object]:
    return {"seed": seed, "sentences": count, "voices": [v.voice_id for v in voices]}


def build_heldout_set(
    out_dir: Path = DEFAULT_HELDOUT_DIR,
    *,
    count: int = DEFAULT_SENTENCES,
    seed: int = HELDOUT_SEED,
    voices: Sequence[HeldOutVoice] = HELDOUT_VOICES,
) -> Path:
    """Render (or reuse) the held-out set; returns its manifest path.

    Raises ``HeldOutSetError`` when none of ``voices`` is installed or every rendering failed.
    """
    installed = [voice for voice in voices if voice.available()]
    manifest = out_dir / MANIFEST_NAME
    meta_path = out_dir / META_NAME
    wanted = _meta(count, seed, installed)
    if manifest.is_file() and meta_path.is_file():
        try:
            if json.loads(meta_path.read_text(encoding="utf-8")) == wanted:
                return manifest
        except ValueError:
            pass  # a broken meta file: rebuild
    if not installed:
        names = ", ".join(v.voice_id for v in voices)
        raise HeldOutSetError(f"none of the held-out voices is installed ({names})")

    sentences = heldout_sentences(count, seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, object]] = []
    for voice in installed:
        voice_dir = out_dir / voice.set_name
        voice_dir.mkdir(exist_ok=True)
        for index, text in enumerate(sentences):
            audio = voice_dir / f"{index:04d}.flac"
            duration = render(voice, text, audio)
            if duration is None:
                continue
            rows.append(
                {
                    "audio": f"{voice.set_name}/{audio.name}",
                    "text": text,
                    "set": voice.set_name,
                    "speaker": voice.voice_id,
                    "duration": duration,
                }
            )
    if not rows:
        raise HeldOutSetError(f"every held-out voice failed to render into {out_dir}")
    manifest.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    meta_path.write_text(json.dumps(wanted), encoding="utf-8")
    return manifest
