"""Test signals and encoders: real audio files built in-test with soundfile and PyAV (no TTS)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import numpy.typing as npt
import soundfile

DATA_DIR = Path(__file__).resolve().parents[2] / "data"


def sine(
    frequency: float, seconds: float, rate: int, amplitude: float = 0.5
) -> npt.NDArray[np.float32]:
    t = np.arange(int(seconds * rate)) / rate
    return np.asarray(amplitude * np.sin(2 * np.pi * frequency * t), dtype=np.float32)


def dominant_frequency(samples: npt.NDArray[np.float32], rate: int) -> float:
    """The strongest frequency in a signal (Hann-windowed FFT peak)."""
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(samples.size)))
    return float(np.fft.rfftfreq(samples.size, 1 / rate)[int(spectrum.argmax())])


def encode_with_soundfile(
    frames: npt.NDArray[np.float32], rate: int, container: str, subtype: str | None = None
) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, frames, rate, format=container, subtype=subtype)
    return buffer.getvalue()


def encode_with_pyav(
    frames: npt.NDArray[np.float32], rate: int, container: str, codec: str
) -> bytes:
    """Encode [samples] or [samples, channels] float audio with ffmpeg through PyAV."""
    import av

    planar = frames.T if frames.ndim == 2 else frames[None, :]
    layout = "stereo" if planar.shape[0] == 2 else "mono"
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=container) as output:
        stream = output.add_stream(codec, rate=rate)
        assert isinstance(stream, av.audio.stream.AudioStream)
        stream.layout = layout
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(planar, dtype=np.float32), format="fltp", layout=layout
        )
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            output.mux(packet)
        for packet in stream.encode(None):
            output.mux(packet)
    return buffer.getvalue()
