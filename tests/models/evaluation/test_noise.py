"""Noisy eval conditions: exact SNR, the same noise at every SNR, reproducible across processes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import soundfile

from models.evaluation.noise import (
    MIN_SEGMENT_POWER_RATIO,
    NoiseBank,
    NoiseBankError,
    NoiseClip,
    measured_snr_db,
    mix_at_snr,
    power,
)

SR = 16_000


def tone(seconds: float, freq: float = 220.0, amplitude: float = 0.3) -> npt.NDArray[np.float32]:
    t = np.arange(int(seconds * SR)) / SR
    wave: npt.NDArray[np.float32] = (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return wave


def noise(seconds: float, seed: int, amplitude: float = 0.1) -> npt.NDArray[np.float32]:
    return (amplitude * np.random.default_rng(seed).standard_normal(int(seconds * SR))).astype(
        np.float32
    )


def bank(seed: int = 5) -> NoiseBank:
    return NoiseBank(
        [NoiseClip("hiss.wav", noise(3.0, 1)), NoiseClip("fan.wav", noise(4.0, 2, 0.05))],
        seed=seed,
    )


@pytest.mark.parametrize("snr_db", [20.0, 10.0, 5.0, 0.0, -5.0])
def test_mix_reaches_the_requested_snr(snr_db: float) -> None:
    speech = tone(1.0, amplitude=0.1)
    mixed = mix_at_snr(speech, noise(1.0, 3), snr_db)
    assert mixed.dtype == np.float32
    assert mixed.shape == speech.shape
    assert measured_snr_db(speech, mixed - speech) == pytest.approx(snr_db, abs=0.01)


def test_loud_mix_is_scaled_as_a_whole_not_clipped() -> None:
    speech, added = tone(1.0, amplitude=0.95), noise(1.0, 4)
    mixed = mix_at_snr(speech, added, 0.0)
    gain = np.sqrt(power(speech) / power(added))
    unscaled = speech.astype(np.float64) + gain * added.astype(np.float64)
    assert np.max(np.abs(unscaled)) > 1.0  # the case under test
    np.testing.assert_allclose(mixed, unscaled / np.max(np.abs(unscaled)), atol=1e-6)
    assert np.max(np.abs(mixed)) <= 1.0


def test_short_noise_is_looped_to_the_utterance_length() -> None:
    speech = tone(2.0, amplitude=0.1)
    mixed = mix_at_snr(speech, noise(0.5, 5), 10.0)
    assert mixed.shape == speech.shape
    assert measured_snr_db(speech, mixed - speech) == pytest.approx(10.0, abs=0.01)


def test_silent_speech_is_returned_unchanged() -> None:
    silence = np.zeros(SR, dtype=np.float32)
    np.testing.assert_array_equal(mix_at_snr(silence, noise(1.0, 6), 10.0), silence)


def test_silent_noise_is_rejected_instead_of_dividing_by_zero() -> None:
    with pytest.raises(ValueError, match="silent"):
        mix_at_snr(tone(1.0), np.zeros(SR, dtype=np.float32), 10.0)


def test_every_snr_adds_the_same_noise_to_an_utterance() -> None:
    speech = tone(1.5, amplitude=0.1)
    added = {
        snr: bank().mix(speech, snr_db=snr, key="an4_test/a.wav") - speech for snr in (20, 10, 0)
    }
    # Same segment, different gain: the added parts are multiples of each other (up to float32
    # rounding), 20 dB apart = 10x amplitude.
    loud, quiet = added[0].astype(np.float64), added[20].astype(np.float64)
    assert np.corrcoef(loud, quiet)[0, 1] > 0.99999
    assert float(loud @ quiet / (quiet @ quiet)) == pytest.approx(10.0, rel=1e-4)


def test_noise_choice_does_not_depend_on_clip_listing_order() -> None:
    clips = [NoiseClip("hiss.wav", noise(3.0, 1)), NoiseClip("fan.wav", noise(4.0, 2))]
    first = NoiseBank(clips, seed=9).segment(SR, "cv/x.wav")
    second = NoiseBank(list(reversed(clips)), seed=9).segment(SR, "cv/x.wav")
    assert first[0] == second[0]
    np.testing.assert_array_equal(first[1], second[1])


def test_different_utterances_and_seeds_draw_different_noise() -> None:
    draws = {
        (seed, key): bank(seed).segment(SR, key)[1].tobytes()
        for seed in (1, 2)
        for key in ("a.wav", "b.wav", "c.wav")
    }
    assert len(set(draws.values())) == len(draws)


def test_noise_choice_is_identical_in_a_fresh_process() -> None:
    """Python salts str hashes per process; the choice must not use them."""
    script = (
        "import numpy as np, hashlib\n"
        "from tests.models.evaluation.test_noise import bank\n"
        "seg = bank().segment(16000, 'fsdd_test/3_jackson_0.wav')[1]\n"
        "print(hashlib.sha256(seg.tobytes()).hexdigest())\n"
    )
    runs = {
        subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": str(salt), "PATH": ""},
            cwd=Path(__file__).resolve().parents[3],
        ).stdout.strip()
        for salt in (1, 2)
    }
    import hashlib

    here = hashlib.sha256(bank().segment(SR, "fsdd_test/3_jackson_0.wav")[1].tobytes()).hexdigest()
    assert runs == {here}


@pytest.mark.parametrize("segment_seconds", [0.2, 1.0, 4.5])
def test_near_silent_stretches_of_event_noise_are_never_chosen(segment_seconds: float) -> None:
    """A 0.3 s bark in 5 s of digital silence (like the ESC-50 clip in the shared noise folder):
    every segment, even a 0.2 s one for a one-digit utterance, must hold real noise."""
    bark = np.zeros(5 * SR, dtype=np.float32)
    bark[2 * SR : 2 * SR + int(0.3 * SR)] = noise(0.3, 7, 0.5)
    event_bank = NoiseBank([NoiseClip("dog.wav", bark)], seed=3)
    length = int(segment_seconds * SR)
    for key in (f"fsdd_test/{i}.wav" for i in range(300)):
        _, segment = event_bank.segment(length, key)
        assert segment.size == length
        assert power(segment) >= MIN_SEGMENT_POWER_RATIO * power(bark)


def test_bank_ignores_silent_clips_and_refuses_when_none_is_left() -> None:
    quiet = NoiseClip("quiet.wav", np.zeros(SR, dtype=np.float32))
    assert [c.name for c in NoiseBank([quiet, NoiseClip("hiss.wav", noise(1, 1))]).clips] == [
        "hiss.wav"
    ]
    with pytest.raises(NoiseBankError, match="silent"):
        NoiseBank([quiet])


def test_bank_from_directory_skips_corrupt_files_and_names_a_missing_folder(
    tmp_path: Path,
) -> None:
    soundfile.write(tmp_path / "hiss.wav", noise(1.0, 8), SR)
    (tmp_path / "broken.wav").write_bytes(b"RIFF\x00\x00garbage")
    (tmp_path / "notes.txt").write_text("not audio")
    loaded = NoiseBank.from_directory(tmp_path)
    assert [c.name for c in loaded.clips] == ["hiss.wav"]
    assert loaded.total_seconds == pytest.approx(1.0)

    with pytest.raises(NoiseBankError, match="no such noise folder"):
        NoiseBank.from_directory(tmp_path / "missing")
    (tmp_path / "hiss.wav").unlink()
    with pytest.raises(NoiseBankError, match=r"broken\.wav"):
        NoiseBank.from_directory(tmp_path)
