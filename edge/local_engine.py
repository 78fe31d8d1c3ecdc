"""On-device inference: one onnxruntime session over the active slot, best provider first.

Execution providers are tried in this order when ``onnxruntime.get_available_providers()`` lists
them: Qualcomm QNN (Hexagon NPU), Intel OpenVINO, Apple CoreML, Android NNAPI — then always CPU,
which every build has and which runs any node the accelerator rejects. A device without an NPU
simply gets ``["CPUExecutionProvider"]``.

onnxruntime is imported lazily (by ``models.runtime.session``) so the agent's sync loop and CLI
start fast and a device that only syncs never pays for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from models.runtime.transcript import Engine

if TYPE_CHECKING:
    from models.runtime.transcriber import Transcriber

PROVIDER_PREFERENCE = (
    "QNNExecutionProvider",
    "OpenVINOExecutionProvider",
    "CoreMLExecutionProvider",
    "NnapiExecutionProvider",
)
CPU_PROVIDER = "CPUExecutionProvider"
EDGE_ENGINE: Engine = "onnxruntime-edge"


def choose_providers(available: Sequence[str]) -> list[str]:
    """Accelerators this build has, in preference order, then CPU as the catch-all."""
    chosen = [provider for provider in PROVIDER_PREFERENCE if provider in available]
    return [*chosen, CPU_PROVIDER]


def available_providers() -> list[str]:
    import onnxruntime

    return list(onnxruntime.get_available_providers())


def load_local_transcriber(model_dir: Path, *, intra_op_threads: int = 1) -> Transcriber:
    """A ``Transcriber`` over the model in ``model_dir`` whose transcripts say ``onnxruntime-edge``."""
    from models.runtime.backend import OnnxRuntimeBackend
    from models.runtime.session import AcousticModel
    from models.runtime.transcriber import Transcriber

    model = AcousticModel.load(
        model_dir,
        intra_op_threads=intra_op_threads,
        providers=choose_providers(available_providers()),
    )
    backend = OnnxRuntimeBackend(model, engine=EDGE_ENGINE)
    return Transcriber(backend, model.manifest)
