"""Audio decoding: every format users upload, every sample rate, and every way a file can be bad."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from edgescribe.samples import list_samples
from models.runtime.audio import (
    AudioDecodeError,
    AudioTooLargeError,
    AudioTooLongError,
    CorruptAudioError,
    EmptyAudioError,
    UnsupportedFormatError,
    decode_audio,
    sniff_format,
)
from tests.models.runtime.signals import (
    DATA_DIR,
    dominant_frequency,
    encode_with_pyav,
    encode_with_soundfile,
    sine,
)

TONE_HZ = 440.0

# (format name, encoder) -> bytes of a 1 s, 440 Hz stereo tone at 44.1 kHz (48 kHz for Opus).
ENCODERS = {
    "wav": lambda x, r: encode_with_soundfile(x, r, "WAV", "PCM_16"),
    "flac": lambda x, r: encode_with_soundfile(x, r, "FLAC", "PCM_16"),
    "ogg": lambda x, r: encode_with_soundfile(x, r, "OGG", "VORBIS"),
    "opus": lambda x, r: encode_with_soundfile(x, r, "OGG", "OPUS"),
    "mp3": lambda x, r: encode_with_soundfile(x, r, "MP3", "MPEG_LAYER_III"),
    "m4a": lambda x, r: encode_with_pyav(x, r, "ipod", "aac"),
    "aac": lambda x, r: encode_with_pyav(x, r, "adts", "aac"),
    "webm": lambda x, r: encode_with_pyav(x, r, "webm", "libopus"),
}


@pytest.mark.parametrize("fmt", sorted(ENCODERS))
def test_every_upload_format_decodes_to_16k_mono_float(fmt: str) -> None:
    rate = 48_000 if fmt in ("opus", "webm") else 44_100
    tone = sine(TONE_HZ, 1.0, rate)
    data = ENCODERS[fmt](np.stack([tone, tone], axis=1), rate)

    audio = decode_audio(data, name=f"tone.{fmt}")

    assert audio.format == fmt
    assert audio.samples.dtype == np.float32
    assert audio.samples.ndim == 1
    assert audio.source_sample_rate == rate
    assert audio.source_channels == 2
    # Lossy codecs add encoder delay/padding (AAC: 1024+ samples), never a tenth of a second.
    assert audio.duration == pytest.approx(1.0, abs=0.1)
    assert audio.samples.size == pytest.approx(16_000, abs=1_700)
    assert float(np.abs(audio.samples).max()) <= 1.0
    assert dominant_frequency(audio.samples, 16_000) == pytest.approx(TONE_HZ, abs=5)


def test_format_is_sniffed_from_bytes_not_the_file_name() -> None:
    """An MP3 uploaded as .wav (a common mislabel) decodes as MP3 instead of failing."""
    tone = sine(TONE_HZ, 1.0, 22_050)
    data = encode_with_soundfile(tone, 22_050, "MP3", "MPEG_LAYER_III")

    audio = decode_audio(data, name="mislabelled.wav")

    assert audio.format == "mp3"
    assert dominant_frequency(audio.samples, 16_000) == pytest.approx(TONE_HZ, abs=5)


@pytest.mark.parametrize("rate", [8_000, 11_025, 16_000, 22_050, 44_100, 48_000])
def test_every_common_sample_rate_is_resampled_to_16k_keeping_pitch(rate: int) -> None:
    seconds = 2.0
    tone = sine(1_000.0, seconds, rate)
    audio = decode_audio(encode_with_soundfile(tone, rate, "WAV", "FLOAT"), name="tone.wav")

    assert audio.source_sample_rate == rate
    assert audio.samples.size == round(seconds * 16_000)
    assert dominant_frequency(audio.samples, 16_000) == pytest.approx(1_000.0, abs=2)
    # Amplitude survives the polyphase filter (away from the edges).
    middle = audio.samples[4_000:-4_000]
    assert float(np.abs(middle).max()) == pytest.approx(0.5, abs=0.02)


def test_stereo_is_averaged_to_mono() -> None:
    """Left carries a tone, right is silent: mono holds the tone at half amplitude."""
    tone = sine(TONE_HZ, 1.0, 16_000, amplitude=0.8)
    stereo = np.stack([tone, np.zeros_like(tone)], axis=1)
    audio = decode_audio(encode_with_soundfile(stereo, 16_000, "WAV", "FLOAT"), name="lr.wav")

    assert audio.source_channels == 2
    np.testing.assert_allclose(audio.samples, tone / 2, atol=1e-6)


def test_integer_pcm_is_scaled_into_unit_range() -> None:
    full_scale = np.full(1_600, 0.999, dtype=np.float32)
    audio = decode_audio(encode_with_soundfile(full_scale, 16_000, "WAV", "PCM_16"), name="x.wav")

    assert float(audio.samples.max()) == pytest.approx(0.999, abs=1e-3)
    assert float(np.abs(audio.samples).max()) <= 1.0


def test_resampling_filters_out_frequencies_above_the_new_nyquist() -> None:
    """A 10 kHz tone cannot exist at 16 kHz: a proper low-pass removes it instead of aliasing
    it to 6 kHz (where a naive decimator would put it, inside the speech band)."""
    tone = sine(10_000.0, 1.0, 44_100)
    audio = decode_audio(encode_with_soundfile(tone, 44_100, "WAV", "FLOAT"), name="hi.wav")

    rms = float(np.sqrt(np.mean(audio.samples[1_000:-1_000] ** 2)))
    assert rms < 0.5 / np.sqrt(2) * 0.01  # at least 40 dB down


def test_a_path_is_decoded_and_named_in_errors(tmp_path: Path) -> None:
    path = tmp_path / "call.flac"
    path.write_bytes(encode_with_soundfile(sine(TONE_HZ, 0.5, 16_000), 16_000, "FLAC"))

    assert decode_audio(path).format == "flac"
    path.write_bytes(b"")
    with pytest.raises(EmptyAudioError, match=r"call\.flac"):
        decode_audio(path)


@pytest.mark.parametrize(
    ("fixture", "error", "reason"),
    [
        ("empty.wav", EmptyAudioError, "empty"),
        ("truncated.wav", CorruptAudioError, "truncated"),
        ("header_only.wav", CorruptAudioError, "truncated"),
        ("garbage.wav", CorruptAudioError, "not a valid audio header"),
        ("picture.png", UnsupportedFormatError, "PNG image"),
        ("notes.txt", UnsupportedFormatError, "text file"),
    ],
)
def test_bad_input_raises_a_specific_error_naming_file_and_reason(
    fixture: str, error: type[AudioDecodeError], reason: str
) -> None:
    path = DATA_DIR / fixture
    with pytest.raises(error) as caught:
        decode_audio(path)
    assert caught.value.source == str(path)
    assert reason in caught.value.reason
    assert fixture in str(caught.value)
    assert reason in str(caught.value)


def test_decode_errors_survive_pickling_with_their_reason() -> None:
    error = CorruptAudioError("a.wav", "truncated")
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301 (our own bytes, round trip)
    assert type(copy) is CorruptAudioError
    assert (copy.source, copy.reason, str(copy)) == ("a.wav", "truncated", "a.wav: truncated")


def test_png_renamed_to_wav_is_unsupported_not_corrupt() -> None:
    data = (DATA_DIR / "picture.png").read_bytes()
    with pytest.raises(UnsupportedFormatError, match="PNG"):
        decode_audio(data, name="upload.wav")


def test_unknown_bytes_without_an_audio_extension_are_unsupported() -> None:
    noise = np.random.default_rng(7).integers(0, 255, 2_000, dtype=np.uint8).tobytes()
    assert sniff_format(noise) is None
    with pytest.raises(UnsupportedFormatError, match="unrecognised format"):
        decode_audio(noise, name="blob.bin")


def test_valid_container_with_zero_samples_is_empty_audio() -> None:
    data = encode_with_soundfile(np.zeros(0, dtype=np.float32), 16_000, "WAV", "PCM_16")
    with pytest.raises(EmptyAudioError, match="no audio samples"):
        decode_audio(data, name="silent.wav")


@pytest.mark.parametrize("fmt", ["flac", "mp3", "m4a"])
def test_truncated_compressed_upload_is_corrupt_not_silently_shortened(fmt: str) -> None:
    tone = sine(TONE_HZ, 3.0, 16_000)
    data = ENCODERS[fmt](np.stack([tone, tone], axis=1), 16_000)
    with pytest.raises(CorruptAudioError):
        decode_audio(data[: len(data) // 2], name=f"half.{fmt}")


def test_oversize_bytes_are_refused_before_decoding() -> None:
    data = encode_with_soundfile(sine(TONE_HZ, 1.0, 16_000), 16_000, "WAV", "PCM_16")
    with pytest.raises(AudioTooLargeError, match="over the 1000-byte limit"):
        decode_audio(data, name="big.wav", max_bytes=1_000)


def test_oversize_file_is_refused_without_reading_it(tmp_path: Path) -> None:
    """A sparse 3 GB file: reading it would take seconds and memory; ``stat`` takes neither."""
    path = tmp_path / "huge.wav"
    with path.open("wb") as handle:
        handle.truncate(3 * 1024**3)
    with pytest.raises(AudioTooLargeError, match=r"huge\.wav"):
        decode_audio(path)


@pytest.mark.parametrize("fmt", ["wav", "mp3", "m4a"])
def test_audio_over_the_duration_cap_is_refused(fmt: str) -> None:
    tone = sine(TONE_HZ, 3.0, 16_000)
    data = ENCODERS[fmt](np.stack([tone, tone], axis=1), 16_000)
    with pytest.raises(AudioTooLongError, match="over the 2 s limit"):
        decode_audio(data, name=f"long.{fmt}", max_seconds=2.0)


def test_committed_demo_samples_decode() -> None:
    samples = list_samples()
    assert {s.path.suffix for s in samples} >= {".wav", ".flac", ".ogg", ".mp3", ".m4a"}
    for sample in samples:
        audio = decode_audio(sample.path)
        assert 1.5 < audio.duration < 6.0, sample.path
        assert float(np.abs(audio.samples).max()) > 0.1, sample.path


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"RIFF\x00\x00\x00\x00WAVEfmt ", "wav"),
        (b"fLaC\x00\x00\x00\x22", "flac"),
        (b"OggS" + b"\x00" * 24 + b"\x01vorbis", "ogg"),
        (b"OggS" + b"\x00" * 24 + b"OpusHead", "opus"),
        (b"\x00\x00\x00\x20ftypM4A ", "m4a"),
        (b"\x1a\x45\xdf\xa3\x01\x00", "webm"),
        (b"\xff\xfb\x90\x00", "mp3"),
        (b"\xff\xf1\x50\x80", "aac"),
        (b"ID3\x04\x00\x00\x00\x00\x00\x00\xff\xfb\x90\x00", "mp3"),
        (b"\x89PNG\r\n\x1a\n", None),
        (b"hello world", None),
    ],
)
def test_sniffing_recognises_magic_numbers(head: bytes, expected: str | None) -> None:
    assert sniff_format(head) == expected
