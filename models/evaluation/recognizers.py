"""The systems the benchmark scores, behind one small interface: 16 kHz samples in, text out.

``ModelRecognizer`` is the product path (``models.runtime.transcriber.Transcriber`` over an
exported ONNX model, the same code a device or a Lambda runs). ``PocketsphinxRecognizer`` is the
peer: CMU PocketSphinx 5 with the en-US acoustic model, language model and dictionary its PyPI
wheel ships, in its default configuration (no tuning on our eval sets: that would flatter neither
system honestly).
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Final, Protocol

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from models.runtime.manifest import ModelManifest
    from models.runtime.transcriber import Transcriber

PEER_NAME: Final = "pocketsphinx"


class PeerUnavailableError(RuntimeError):
    """The peer recogniser is not installed (``pip install -e '.[peer]'``)."""


class Recognizer(Protocol):
    """Override ``recognize``: one utterance of float32 16 kHz mono samples -> its text."""

    @property
    def name(self) -> str: ...

    @property
    def kind(self) -> str: ...  # "model" | "peer"

    def recognize(self, samples: npt.NDArray[np.float32], *, key: str) -> str: ...


class ModelRecognizer:
    """An exported EdgeScribe model through the runtime's ``Transcriber``."""

    kind = "model"

    def __init__(self, transcriber: Transcriber, model_dir: Path) -> None:
        self.transcriber = transcriber
        self.model_dir = model_dir

    @classmethod
    def load(cls, model_dir: Path, *, intra_op_threads: int = 1) -> ModelRecognizer:
        from models.runtime.transcriber import Transcriber

        return cls(
            Transcriber.from_model_dir(model_dir, intra_op_threads=intra_op_threads), model_dir
        )

    @property
    def manifest(self) -> ModelManifest:
        return self.transcriber.manifest

    @property
    def name(self) -> str:
        return self.transcriber.manifest.name

    def recognize(self, samples: npt.NDArray[np.float32], *, key: str) -> str:
        return self.transcriber.transcribe(samples, transcript_id=key).text


class PocketsphinxRecognizer:
    """PocketSphinx 5 (default en-US model shipped in its wheel), one decoder reused for all clips."""

    kind = "peer"
    name = PEER_NAME

    def __init__(self) -> None:
        try:
            import pocketsphinx
        except ImportError as exc:
            raise PeerUnavailableError(
                "pocketsphinx is not installed; install the peer extra: pip install -e '.[peer]'"
            ) from exc
        self._decoder = pocketsphinx.Decoder(loglevel="FATAL")
        self.version = metadata.version("pocketsphinx")

    def recognize(self, samples: npt.NDArray[np.float32], *, key: str) -> str:
        pcm = (np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
        self._decoder.start_utt()
        self._decoder.process_raw(pcm, full_utt=True)
        self._decoder.end_utt()
        hypothesis = self._decoder.hyp()
        return str(hypothesis.hypstr) if hypothesis is not None else ""
