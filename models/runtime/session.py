"""One onnxruntime session over a verified model: the only place the runtime touches onnxruntime.

Sessions are expensive (graph optimisation, weight packing): create one per process and reuse it.
Threads are capped (``intra_op_threads``, one inter-op thread, sequential execution) because the
callers are Lambdas with one or two vCPUs, devices that also run an app, and a batch worker that
scales by processes, not threads; an uncapped session would grab every core and fight them.

The graph contract (see ``models/runtime/manifest.py`` and the design): inputs ``audio`` float32
[B, T] and ``audio_lengths`` int64 [B]; outputs ``log_probs`` float32 [B, F, V] (log-softmax
applied, blank = 0) and ``log_prob_lengths`` int64 [B]. Graphs exported with the older names
``logits`` / ``logit_lengths`` are accepted and normalised with a log-softmax here.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Final

import numpy as np
import numpy.typing as npt

from models.runtime.artifacts import ModelIntegrityError, load_model_artifact
from models.runtime.manifest import ModelManifest

if TYPE_CHECKING:
    import onnxruntime

INPUT_AUDIO: Final = "audio"
INPUT_LENGTHS: Final = "audio_lengths"
#: (scores, lengths, already log-softmaxed?) in order of preference.
_OUTPUT_NAMES: Final = (("log_probs", "log_prob_lengths", True), ("logits", "logit_lengths", False))
CPU_PROVIDER: Final = "CPUExecutionProvider"


class AcousticModel:
    """Audio in, per-frame log-probabilities over the manifest's vocabulary out."""

    def __init__(
        self, session: onnxruntime.InferenceSession, manifest: ModelManifest, model_path: Path
    ) -> None:
        self.session = session
        self.manifest = manifest
        self.model_path = model_path
        inputs = {node.name for node in session.get_inputs()}
        outputs = {node.name for node in session.get_outputs()}
        if not {INPUT_AUDIO, INPUT_LENGTHS} <= inputs:
            raise ModelIntegrityError(
                f"{model_path}: inputs {sorted(inputs)}; "
                f"expected {INPUT_AUDIO!r} and {INPUT_LENGTHS!r}"
            )
        for scores, lengths, normalised in _OUTPUT_NAMES:
            if {scores, lengths} <= outputs:
                self._outputs = [scores, lengths]
                self._normalised = normalised
                break
        else:
            raise ModelIntegrityError(
                f"{model_path}: outputs {sorted(outputs)}; "
                "expected 'log_probs' and 'log_prob_lengths'"
            )
        vocab_dim = next(o for o in session.get_outputs() if o.name == self._outputs[0]).shape[-1]
        if isinstance(vocab_dim, int) and vocab_dim != len(manifest.vocabulary):
            raise ModelIntegrityError(
                f"{model_path}: the graph emits {vocab_dim} symbols per frame but the manifest's "
                f"vocabulary has {len(manifest.vocabulary)}"
            )

    @classmethod
    def load(
        cls,
        model_dir: Path,
        *,
        intra_op_threads: int = 1,
        providers: Sequence[str] | None = None,
    ) -> AcousticModel:
        """Verify the folder (manifest, size, sha256), then build a thread-capped session."""
        import onnxruntime

        artifact = load_model_artifact(model_dir)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = max(1, intra_op_threads)
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # errors only: shape-inference warnings are noise to users
        try:
            session = onnxruntime.InferenceSession(
                str(artifact.model_path),
                sess_options=options,
                providers=choose_providers(providers),
            )
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
            raise ModelIntegrityError(
                f"{artifact.model_path}: onnxruntime cannot load it: {exc}"
            ) from exc
        return cls(session, artifact.manifest, artifact.model_path)

    @property
    def providers(self) -> list[str]:
        return list(self.session.get_providers())

    def log_probs(
        self, audio: npt.NDArray[np.float32], lengths: npt.NDArray[np.int64]
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        """[B, T] float32 + [B] int64 -> [B, F, V] float32 log-probs + [B] int64 frame counts."""
        audio = np.ascontiguousarray(audio, dtype=np.float32)
        lengths = np.ascontiguousarray(lengths, dtype=np.int64)
        if audio.ndim != 2 or lengths.shape != (audio.shape[0],):
            raise ValueError(
                f"expected audio [B, T] and lengths [B], got {audio.shape} and {lengths.shape}"
            )
        scores, frame_counts = self.session.run(
            self._outputs, {INPUT_AUDIO: audio, INPUT_LENGTHS: lengths}
        )
        scores = np.asarray(scores, dtype=np.float32)
        if not self._normalised:
            scores = log_softmax(scores)
        return scores, np.asarray(frame_counts, dtype=np.int64)


def choose_providers(requested: Sequence[str] | None) -> list[str]:
    """The requested execution providers this onnxruntime build has, in order, CPU always last.

    Devices list NPUs in preference order (QNN, OpenVINO, CoreML, NNAPI); a build without one of
    them skips it instead of failing, and CPU remains as the fallback that always exists.
    """
    import onnxruntime

    available = set(onnxruntime.get_available_providers())
    chosen = [p for p in (requested or [CPU_PROVIDER]) if p in available and p != CPU_PROVIDER]
    return [*chosen, CPU_PROVIDER]


def log_softmax(scores: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    shifted = scores - scores.max(axis=-1, keepdims=True)
    result: npt.NDArray[np.float32] = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    return result.astype(np.float32, copy=False)
