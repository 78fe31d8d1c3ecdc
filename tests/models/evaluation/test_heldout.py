"""Held-out-voice set: fresh sentences, engine failures caught, cache reused. No TTS engine needed:
the "voices" here are small Python programs that behave like the engines (including festival's
exit-0-on-error habit)."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import soundfile

from models.data.synthesize import HELD_OUT_VOICES as TRAINING_EXCLUSIONS
from models.evaluation.heldout import (
    HELDOUT_VOICES,
    HeldOutSetError,
    HeldOutVoice,
    build_heldout_set,
    heldout_sentences,
    render,
)

WRITE_TONE = (
    "import sys, numpy as np, soundfile as sf\n"
    "t = np.arange(22050) / 22050\n"
    "sf.write(sys.argv[1], 0.2 * np.sin(2 * np.pi * 200 * t), 22050)\n"
)
SIOD_ERROR = "import sys\nprint('SIOD ERROR: unbound variable : voice_x', file=sys.stderr)\n"
WRITE_SILENCE = (
    "import sys, numpy as np, soundfile as sf\nsf.write(sys.argv[1], np.zeros(8000), 16000)\n"
)


@dataclass(frozen=True)
class ScriptVoice(HeldOutVoice):
    script: str = WRITE_TONE

    def available(self) -> bool:
        return True

    def command(self, text_file: Path, text: str, wav: Path) -> list[str]:
        return [sys.executable, "-c", self.script, str(wav)]


def voice(script: str = WRITE_TONE, name: str = "heldout_fake") -> ScriptVoice:
    return ScriptVoice(name, f"fake:{name}", "fake", name, script)


def test_every_heldout_voice_is_excluded_from_the_training_corpus() -> None:
    assert {v.voice_id for v in HELDOUT_VOICES} <= TRAINING_EXCLUSIONS


def test_sentences_are_distinct_reproducible_and_not_the_training_draw() -> None:
    sentences = heldout_sentences(40)
    assert len(set(sentences)) == 40
    assert heldout_sentences(40) == sentences
    assert heldout_sentences(40, seed=7) != sentences  # 7: the synthetic corpus's default seed


def test_render_writes_16k_mono_flac(tmp_path: Path) -> None:
    duration = render(voice(), "hello", tmp_path / "x.flac")
    assert duration == pytest.approx(1.0, abs=0.01)
    info = soundfile.info(tmp_path / "x.flac")
    assert (info.samplerate, info.channels, info.format) == (16_000, 1, "FLAC")


@pytest.mark.parametrize("script", [SIOD_ERROR, WRITE_SILENCE, "raise SystemExit(3)"])
def test_render_treats_engine_failure_as_missing_clip(tmp_path: Path, script: str) -> None:
    """festival exits 0 after 'SIOD ERROR'; silence is no speech; non-zero exit is failure."""
    assert render(voice(script), "hello", tmp_path / "x.flac") is None
    assert not (tmp_path / "x.flac").exists()


def test_build_writes_a_manifest_per_voice_and_reuses_its_cache(tmp_path: Path) -> None:
    voices = [voice(name="heldout_a"), voice(name="heldout_b")]
    manifest = build_heldout_set(tmp_path, count=3, voices=voices)
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    assert [r["set"] for r in rows] == ["heldout_a"] * 3 + ["heldout_b"] * 3
    assert all((tmp_path / r["audio"]).is_file() for r in rows)
    assert [r["text"] for r in rows[:3]] == heldout_sentences(3)

    stamp = manifest.stat().st_mtime_ns
    failing = [voice(SIOD_ERROR, "heldout_a"), voice(SIOD_ERROR, "heldout_b")]
    assert build_heldout_set(tmp_path, count=3, voices=failing) == manifest  # cache hit
    assert manifest.stat().st_mtime_ns == stamp


def test_build_rebuilds_when_the_settings_change(tmp_path: Path) -> None:
    build_heldout_set(tmp_path, count=2, voices=[voice()])
    manifest = build_heldout_set(tmp_path, count=3, voices=[voice()])
    assert len(manifest.read_text().splitlines()) == 3


def test_build_fails_clearly_when_no_voice_can_render(tmp_path: Path) -> None:
    with pytest.raises(HeldOutSetError, match="failed to render"):
        build_heldout_set(tmp_path, count=2, voices=[voice(SIOD_ERROR)])

    @dataclass(frozen=True)
    class Uninstalled(HeldOutVoice):
        def available(self) -> bool:
            return False

    with pytest.raises(HeldOutSetError, match="none of the held-out voices is installed"):
        build_heldout_set(tmp_path / "other", voices=[Uninstalled("s", "pico", "pico", "en-US")])
