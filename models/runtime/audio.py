"""Audio in: any recording a user or a phone produces -> float32 mono 16 kHz in [-1, 1].

Checks run in this order, so a hostile or broken upload costs as little as possible and the user
learns the real reason:

1. size: zero bytes -> ``EmptyAudioError``; more than ``max_bytes`` -> ``AudioTooLargeError``
   (a ``Path`` is measured with ``stat`` before it is read);
2. format: sniffed from the first bytes (magic numbers), never trusted from the file name. A known
   non-audio file (PNG, PDF, text, ...) -> ``UnsupportedFormatError``; unrecognised bytes behind an
   audio extension (``.wav`` full of garbage) -> ``CorruptAudioError``; otherwise
   ``UnsupportedFormatError``;
3. container integrity: a WAV whose ``data`` chunk declares more bytes than the file holds is
   truncated (libsndfile would silently return the shorter audio) -> ``CorruptAudioError``;
4. duration: the header's length is checked before decoding and the running length while decoding
   -> ``AudioTooLongError``;
5. decoding: WAV/FLAC/OGG-Vorbis/Opus/MP3 through soundfile (libsndfile), M4A/AAC/WebM through
   PyAV (ffmpeg), which is what phones record. Decoder failures -> ``CorruptAudioError``; fewer
   samples than the header declares -> ``CorruptAudioError`` ("truncated"); no samples at all ->
   ``EmptyAudioError``;
6. channels are averaged to mono, the signal is resampled to 16 kHz with a polyphase filter
   (``models.runtime.resample``) and clipped to [-1, 1].

Example::

    audio = decode_audio(Path("call.m4a"))
    audio.samples.shape, audio.source_sample_rate, audio.format   # ((48000,), 44100, 'm4a')
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

import numpy as np
import numpy.typing as npt

from edgescribe.settings import MAX_AUDIO_SECONDS, MAX_UPLOAD_BYTES, SAMPLE_RATE
from models.runtime.resample import resample

if TYPE_CHECKING:
    import soundfile
    from av.audio.stream import AudioStream
    from av.container import InputContainer

#: Formats decoded by libsndfile (through soundfile) and by ffmpeg (through PyAV).
SOUNDFILE_FORMATS: Final = frozenset({"wav", "flac", "ogg", "opus", "mp3"})
PYAV_FORMATS: Final = frozenset({"m4a", "aac", "webm"})
#: File extensions that claim to be audio: unrecognised bytes behind one of these are "corrupt".
AUDIO_EXTENSIONS: Final = frozenset(
    {"wav", "wave", "flac", "ogg", "oga", "opus", "mp3", "m4a", "mp4", "aac", "webm"}
)
_BLOCK_FRAMES: Final = 1 << 18
#: MP3 decoders add/drop up to a couple of frames of delay and padding: not a truncation.
_MP3_LENGTH_SLACK: Final = 2 * 1152


class AudioDecodeError(ValueError):
    """Audio that cannot become model input; ``str()`` names the file and the reason."""

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason

    def __reduce__(self) -> tuple[type[AudioDecodeError], tuple[str, str]]:
        # Keep the two-argument form through pickling (process pools, multiprocessing queues).
        return type(self), (self.source, self.reason)


class UnsupportedFormatError(AudioDecodeError):
    """Not audio we decode: an image, a text file, an unknown container or codec."""


class EmptyAudioError(AudioDecodeError):
    """Zero bytes, or a valid container holding zero samples."""


class CorruptAudioError(AudioDecodeError):
    """A recognised format whose bytes are broken: truncated, garbage header, decoder failure."""


class AudioTooLongError(AudioDecodeError):
    """Longer than the caller's duration cap."""


class AudioTooLargeError(AudioDecodeError):
    """More bytes than the caller's size cap (checked before any decoding)."""


@dataclass(frozen=True, eq=False)
class DecodedAudio:
    """Model-ready audio plus what the source was (for transcripts and diagnostics)."""

    samples: npt.NDArray[np.float32]  # float32, mono, 16 kHz, in [-1, 1]
    source_sample_rate: int
    source_channels: int
    duration: float  # seconds
    format: str  # sniffed format: wav, flac, ogg, opus, mp3, m4a, aac, webm
    decode_seconds: float = 0.0  # wall-clock time spent decoding and resampling


def decode_audio(
    data: bytes | Path,
    *,
    name: str = "<bytes>",
    max_seconds: float = MAX_AUDIO_SECONDS,
    max_bytes: int = MAX_UPLOAD_BYTES,
) -> DecodedAudio:
    """Decode ``data`` (bytes or a file path) to model input; see the module doc for the checks."""
    started = time.perf_counter()
    if isinstance(data, Path):
        if name == "<bytes>":
            name = str(data)
        size = data.stat().st_size
        _check_size(size, max_bytes, name)
        data = data.read_bytes()
    _check_size(len(data), max_bytes, name)

    kind = sniff_format(data[:4096])
    if kind is None:
        raise _unrecognised(data, name)
    if kind == "wav":
        _check_wav_complete(data, name)
    if kind in PYAV_FORMATS:
        channels_mixed, rate, channels = _decode_with_pyav(data, name, kind, max_seconds)
    else:
        channels_mixed, rate, channels = _decode_with_soundfile(data, name, kind, max_seconds)

    if channels_mixed.size == 0:
        raise EmptyAudioError(name, f"the {kind} file contains no audio samples")
    samples = np.clip(resample(channels_mixed, rate, SAMPLE_RATE), -1.0, 1.0)
    return DecodedAudio(
        samples=samples.astype(np.float32, copy=False),
        source_sample_rate=rate,
        source_channels=channels,
        duration=channels_mixed.size / rate,
        format=kind,
        decode_seconds=time.perf_counter() - started,
    )


def sniff_format(head: bytes) -> str | None:
    """The audio format the first bytes announce, or ``None``; file names are never consulted."""
    if len(head) >= 12 and head[8:12] == b"WAVE" and head[:4] in (b"RIFF", b"RF64", b"BW64"):
        return "wav"
    if head[:4] == b"fLaC":
        return "flac"
    if head[:4] == b"OggS":
        return "opus" if b"OpusHead" in head[:512] else "ogg"
    if head[4:8] == b"ftyp":
        return "m4a"
    if head[:4] == b"\x1a\x45\xdf\xa3":  # EBML: Matroska / WebM
        return "webm"
    offset = _id3_tag_length(head)
    frame = head[offset : offset + 2]
    if len(frame) == 2 and frame[0] == 0xFF and frame[1] & 0xE0 == 0xE0:
        layer = (frame[1] >> 1) & 0b11
        return "aac" if layer == 0 else "mp3"  # ADTS AAC uses the MPEG sync word with layer 00
    if offset and len(head) > offset:
        return "mp3"  # an ID3 tag is MP3's calling card even if the first frame is past our window
    return None


_NON_AUDIO_SIGNATURES: Final = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"\x7fELF", "an executable"),
)


def _unrecognised(data: bytes, name: str) -> AudioDecodeError:
    for signature, what in _NON_AUDIO_SIGNATURES:
        if data.startswith(signature):
            return UnsupportedFormatError(name, f"this is {what}, not audio")
    if _looks_like_text(data[:1024]):
        return UnsupportedFormatError(name, "this is a text file, not audio")
    extension = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if extension in AUDIO_EXTENSIONS:
        return CorruptAudioError(
            name, f"named .{extension} but the header is not a valid audio header (corrupt file?)"
        )
    return UnsupportedFormatError(
        name, "unrecognised format (supported: WAV, FLAC, OGG/Vorbis, Opus, MP3, M4A/AAC, WebM)"
    )


def _looks_like_text(head: bytes) -> bool:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 3:  # only a multi-byte character cut at the window's end is ok
            return False
        text = head[: exc.start].decode("utf-8")
    return bool(text) and all(c.isprintable() or c in "\r\n\t\f" for c in text)


def _id3_tag_length(head: bytes) -> int:
    """Bytes taken by a leading ID3v2 tag (0 if none); its size field is 4 x 7-bit 'syncsafe'."""
    if len(head) < 10 or head[:3] != b"ID3":
        return 0
    size = 0
    for byte in head[6:10]:
        size = (size << 7) | (byte & 0x7F)
    footer = 10 if head[5] & 0x10 else 0
    return 10 + size + footer


def _check_size(size: int, max_bytes: int, name: str) -> None:
    if size == 0:
        raise EmptyAudioError(name, "the file is empty (0 bytes)")
    if size > max_bytes:
        raise AudioTooLargeError(name, f"{size} bytes is over the {max_bytes}-byte limit")


def _check_wav_complete(data: bytes, name: str) -> None:
    """Walk the RIFF chunks: a ``data`` chunk longer than the bytes present means truncation.

    libsndfile reads a truncated WAV without complaint and returns only what is there, which would
    turn a half-uploaded recording into a silently shortened transcript.
    """
    position = 12
    while position + 8 <= len(data):
        chunk_id = data[position : position + 4]
        size = int.from_bytes(data[position + 4 : position + 8], "little")
        body = position + 8
        if chunk_id == b"data":
            available = len(data) - body
            streaming_size = size in (0, 0xFFFFFFFF) or data[:4] != b"RIFF"  # RF64 uses ds64
            if not streaming_size and size > available:
                raise CorruptAudioError(
                    name,
                    f"truncated: the WAV header declares {size} bytes of audio "
                    f"but only {available} are present",
                )
            return
        position = body + size + (size & 1)
    raise CorruptAudioError(name, "truncated or corrupt WAV: no 'data' chunk before the end")


def _decode_with_soundfile(
    data: bytes, name: str, kind: str, max_seconds: float
) -> tuple[npt.NDArray[np.float32], int, int]:
    import soundfile

    try:
        with soundfile.SoundFile(io.BytesIO(data)) as handle:
            rate, channels, declared = handle.samplerate, handle.channels, handle.frames
            _check_duration(declared, rate, max_seconds, name, declared=True)
            mono = _collect(_soundfile_blocks(handle), rate, max_seconds, name)
    except AudioDecodeError:
        raise
    # soundfile.LibsndfileError is a RuntimeError; a broken header can also raise ValueError.
    except (RuntimeError, ValueError, OSError) as exc:
        raise CorruptAudioError(name, f"cannot decode {kind}: {_decoder_message(exc)}") from exc
    if mono.size and _header_length_is_exact(data, kind):
        slack = _MP3_LENGTH_SLACK if kind == "mp3" else 0
        if mono.size + slack < declared:
            raise CorruptAudioError(
                name,
                f"truncated: the {kind} header declares {declared} samples "
                f"but only {mono.size} could be decoded",
            )
    return mono, rate, channels


def _soundfile_blocks(handle: soundfile.SoundFile) -> Iterator[npt.NDArray[np.float32]]:
    while True:
        block = handle.read(_BLOCK_FRAMES, dtype="float32", always_2d=True)
        if not len(block):
            return
        yield block.T  # [channels, frames]


def _header_length_is_exact(data: bytes, kind: str) -> bool:
    """Whether libsndfile's frame count comes from the header rather than from the file size.

    FLAC's STREAMINFO carries the exact total; an MP3 carries one only in a Xing/Info frame
    (otherwise libsndfile estimates it from the size, which for VBR files is not a promise).
    WAV is checked earlier from its chunk sizes.
    """
    if kind == "flac":
        return True
    if kind == "mp3":
        offset = _id3_tag_length(data)
        first_frame = data[offset : offset + 200]
        return b"Xing" in first_frame or b"Info" in first_frame
    return False


def _decode_with_pyav(
    data: bytes, name: str, kind: str, max_seconds: float
) -> tuple[npt.NDArray[np.float32], int, int]:
    import av

    try:
        container = av.open(io.BytesIO(data), mode="r")
    except av.FFmpegError as exc:
        raise CorruptAudioError(name, f"cannot open {kind}: {_decoder_message(exc)}") from exc
    with container:
        if not container.streams.audio:
            raise UnsupportedFormatError(name, f"the {kind} container has no audio stream")
        stream = container.streams.audio[0]
        rate = int(stream.codec_context.sample_rate or 0)
        channels = int(stream.codec_context.channels or 0)
        if rate <= 0:
            raise CorruptAudioError(name, f"the {kind} audio stream declares no sample rate")
        if container.duration is not None:  # microseconds (AV_TIME_BASE)
            _check_duration(
                round(container.duration * rate / 1_000_000), rate, max_seconds, name, declared=True
            )
        try:
            mono = _collect(_pyav_blocks(container, stream), rate, max_seconds, name)
        except AudioDecodeError:
            raise
        except (av.FFmpegError, ValueError) as exc:
            raise CorruptAudioError(name, f"cannot decode {kind}: {_decoder_message(exc)}") from exc
    return mono, rate, max(channels, 1)


def _pyav_blocks(
    container: InputContainer, stream: AudioStream
) -> Iterator[npt.NDArray[np.float32]]:
    import av

    to_float = av.AudioResampler(format="fltp")  # sample format only; rate and layout kept
    for frame in container.decode(stream):
        for converted in to_float.resample(frame):
            yield np.asarray(converted.to_ndarray(), dtype=np.float32)  # [channels, frames]
    for converted in to_float.resample(None):
        yield np.asarray(converted.to_ndarray(), dtype=np.float32)


def _collect(
    blocks: Iterator[npt.NDArray[np.float32]], rate: int, max_seconds: float, name: str
) -> npt.NDArray[np.float32]:
    """Average each [channels, frames] block to mono, enforcing the duration cap as we go."""
    parts: list[npt.NDArray[np.float32]] = []
    frames = 0
    for block in blocks:
        parts.append(np.asarray(block, dtype=np.float32).mean(axis=0))
        frames += block.shape[1]
        _check_duration(frames, rate, max_seconds, name, declared=False)
    if not parts:
        return np.zeros(0, dtype=np.float32)
    return np.concatenate(parts).astype(np.float32, copy=False)


def _check_duration(
    frames: int, rate: int, max_seconds: float, name: str, *, declared: bool
) -> None:
    seconds = frames / rate if rate else 0.0
    if seconds > max_seconds:
        what = "the header declares" if declared else "decoding reached"
        raise AudioTooLongError(
            name, f"{what} {seconds:.1f} s of audio, over the {max_seconds:g} s limit"
        )


#: libsndfile messages that mislead when the "file" is a buffer of bytes.
_CLEARER_MESSAGES: Final = {
    "File does not exist or is not a regular file (possibly a pipe?).": "no decodable audio frames",
    "Unspecified internal error.": "the decoder gave up (truncated or corrupt stream)",
}


def _decoder_message(exc: BaseException) -> str:
    """The decoder's reason without the noise (libsndfile names a BytesIO object's repr)."""
    message = str(exc)
    if "<_io.BytesIO" in message and ">:" in message:
        message = message.split(">:", 1)[-1]
    message = message.strip()
    return _CLEARER_MESSAGES.get(message, message) or type(exc).__name__
