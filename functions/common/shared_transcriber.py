"""One ``Transcriber`` per container, loaded on first use and reused by every invocation.

Loading the ONNX session takes far longer than transcribing a short clip, so it must happen once per
Lambda container (or once per local process), never per record. It is deferred to the first record
rather than done at import so that handlers which only see bad input, and test events, never pay for
it. A lock makes concurrent first uses (the local poller's thread and a test) load it once.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from functions.common.environment import model_dir

if TYPE_CHECKING:
    from models.runtime.transcriber import Transcriber
    from models.runtime.transcript import Engine

_lock = threading.Lock()
_loaded: dict[tuple[Path | None, str], Transcriber] = {}


def shared_transcriber(engine: Engine = "onnxruntime-cloud") -> Transcriber:
    """The process-wide transcriber for ``EDGESCRIBE_MODEL_DIR`` (or the released model)."""
    key = (model_dir(), engine)
    transcriber = _loaded.get(key)
    if transcriber is not None:
        return transcriber
    with _lock:
        transcriber = _loaded.get(key)
        if transcriber is None:
            from models.runtime.transcriber import Transcriber

            transcriber = Transcriber.from_model_dir(
                key[0], engine=engine, intra_op_threads=_intra_op_threads()
            )
            _loaded[key] = transcriber
        return transcriber


def _intra_op_threads() -> int:
    """onnxruntime threads: 1 unless ``EDGESCRIBE_INTRA_OP_THREADS`` says otherwise (Lambda's
    vCPUs grow with its memory setting, and infra knows that setting)."""
    raw = os.environ.get("EDGESCRIBE_INTRA_OP_THREADS", "1")
    try:
        return max(1, int(raw))
    except ValueError as exc:
        raise ValueError(f"EDGESCRIBE_INTRA_OP_THREADS={raw!r} is not an integer") from exc
