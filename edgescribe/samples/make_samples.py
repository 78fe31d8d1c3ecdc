"""Regenerate the demo clips in this folder and the bad-input fixtures in ``tests/data/``.

Run from the repository root (needs the ``flite`` binary, which tests never need)::

    python edgescribe/samples/make_samples.py

Why flite ``slt``: it is held out of training (see docs and ``measured-facts``), so the demo
shows the model on a voice it has never heard. Each sentence is written in a different container
and sample rate, because "transcribe what a phone uploaded" is the product, and the demo exercises
it. The outputs are deterministic apart from encoder versions; every file stays under 150 kB.
"""

from __future__ import annotations

import io
import json
import struct
import subprocess
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import soundfile

from models.runtime.resample import resample

SAMPLES_DIR = Path(__file__).resolve().parent
TEST_DATA_DIR = SAMPLES_DIR.parent.parent / "tests" / "data"
VOICE = "slt"
MAX_FILE_BYTES = 150_000


@dataclass(frozen=True)
class ClipSpec:
    stem: str
    text: str
    container: str  # wav | flac | ogg | mp3 | m4a
    sample_rate: int
    channels: int


CLIPS = (
    ClipSpec(
        "weather", "The weather looks clear today, so we can walk to the park.", "wav", 16_000, 1
    ),
    ClipSpec(
        "phone_number",
        "Please call me back at five five five, two one nine eight.",
        "flac",
        44_100,
        2,
    ),
    ClipSpec("kitchen", "Can you turn off the kitchen lights before bed?", "ogg", 22_050, 1),
    ClipSpec("meeting", "The meeting has moved to Thursday afternoon.", "mp3", 24_000, 1),
    ClipSpec("groceries", "I bought apples, bread and milk at the corner store.", "m4a", 44_100, 1),
)


def synthesize(text: str) -> tuple[npt.NDArray[np.float32], int]:
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "tts.wav"
        subprocess.run(["flite", "-voice", VOICE, "-t", text, "-o", str(wav)], check=True)
        samples, rate = soundfile.read(wav, dtype="float32")
    return samples, int(rate)


def encode(samples: npt.NDArray[np.float32], rate: int, spec: ClipSpec) -> bytes:
    signal = resample(samples, rate, spec.sample_rate)
    signal = np.clip(signal * (0.8 / max(float(np.abs(signal).max()), 1e-6)), -1.0, 1.0)
    frames = np.stack([signal] * spec.channels, axis=1) if spec.channels > 1 else signal
    buffer = io.BytesIO()
    if spec.container == "wav":
        soundfile.write(buffer, frames, spec.sample_rate, format="WAV", subtype="PCM_16")
    elif spec.container == "flac":
        soundfile.write(buffer, frames, spec.sample_rate, format="FLAC", subtype="PCM_16")
    elif spec.container == "ogg":
        soundfile.write(buffer, frames, spec.sample_rate, format="OGG", subtype="VORBIS")
    elif spec.container == "mp3":
        soundfile.write(buffer, frames, spec.sample_rate, format="MP3", subtype="MPEG_LAYER_III")
    elif spec.container == "m4a":
        return encode_aac_m4a(signal, spec.sample_rate)
    else:
        raise ValueError(f"unknown container {spec.container!r}")
    return buffer.getvalue()


def encode_aac_m4a(signal: npt.NDArray[np.float32], rate: int) -> bytes:
    """AAC in an MP4 (.m4a) container via PyAV: what iPhones and most Android recorders produce."""
    import av

    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="ipod") as container:
        stream = container.add_stream("aac", rate=rate)
        stream.layout = "mono"
        stream.bit_rate = 64_000
        frame = av.AudioFrame.from_ndarray(
            signal.astype(np.float32)[None, :], format="fltp", layout="mono"
        )
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buffer.getvalue()


def tiny_png() -> bytes:
    """A valid 1x1 grey PNG, built by hand (no imaging library needed)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00\x80"))
        + chunk(b"IEND", b"")
    )


def write_bad_inputs(good_wav: bytes) -> None:
    """Fixtures for every decode error the runtime promises (oversize is generated in-test)."""
    TEST_DATA_DIR.mkdir(parents=True, exist_ok=True)
    (TEST_DATA_DIR / "empty.wav").write_bytes(b"")
    (TEST_DATA_DIR / "truncated.wav").write_bytes(good_wav[: len(good_wav) // 3])
    (TEST_DATA_DIR / "header_only.wav").write_bytes(good_wav[:40])
    garbage = np.random.default_rng(20261125).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    (TEST_DATA_DIR / "garbage.wav").write_bytes(garbage)
    (TEST_DATA_DIR / "picture.png").write_bytes(tiny_png())
    (TEST_DATA_DIR / "notes.txt").write_text("Meeting notes: call Bob back on Thursday.\n")


def main() -> None:
    lines = []
    good_wav = b""
    for spec in CLIPS:
        samples, rate = synthesize(spec.text)
        data = encode(samples, rate, spec)
        if len(data) > MAX_FILE_BYTES:
            raise SystemExit(
                f"{spec.stem}.{spec.container} is {len(data)} bytes (> {MAX_FILE_BYTES})"
            )
        path = SAMPLES_DIR / f"{spec.stem}.{spec.container}"
        path.write_bytes(data)
        good_wav = good_wav or (data if spec.container == "wav" else b"")
        lines.append(
            json.dumps(
                {
                    "audio": path.name,
                    "text": spec.text,
                    "set": "samples",
                    "voice": f"flite {VOICE}",
                    "sample_rate": spec.sample_rate,
                    "channels": spec.channels,
                }
            )
        )
        print(f"wrote {path.name}: {len(data)} bytes, {len(samples) / rate:.2f} s")
    # Real human clips (CMU AN4 test speakers, copied with their source and licence) are not
    # synthesized here; keep their lines.
    manifest = SAMPLES_DIR / "samples.jsonl"
    if manifest.exists():
        lines += [
            line
            for line in manifest.read_text(encoding="utf-8").splitlines()
            if line.strip() and json.loads(line).get("voice", "").startswith("human")
        ]
    manifest.write_text("\n".join(lines) + "\n", encoding="utf-8")
    write_bad_inputs(good_wav)


if __name__ == "__main__":
    main()
