"""What Triton serves for one model version: the single source both renderings are drawn from.

A spec is derived from a *released* model directory (``model.onnx`` + ``manifest.json``), never
typed by hand, so the tensor names, dtypes, vocabulary size and sample rate Triton declares are the
ones the file actually has. :func:`spec_for_release` opens the ONNX file with onnxruntime and
refuses a file that breaks the contract (``audio``/``audio_lengths`` in, ``log_probs``/
``log_prob_lengths`` out) before any config is written — a wrong config would otherwise only fail
when Triton loads it in the cloud.

Variable-length audio: padding buckets (:mod:`models.runtime.bucketing`). Clients pad each
utterance to a bucket edge and send its true length in ``audio_lengths``; the model masks
padding, so same-bucket requests have one shape and the dynamic batcher merges them. The edges are
carried in the config as the ``length_buckets_seconds`` parameter so a client can read them from
Triton's model-config endpoint instead of guessing (see docs/decisions/0200-triton-serving.md).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from models.runtime.bucketing import LengthBuckets
from models.runtime.manifest import ModelManifest
from models.runtime.storage_layout import validate_id

#: Tensor names of the ONNX contract (docs/decisions, common contract): do not rename.
AUDIO = "audio"
AUDIO_LENGTHS = "audio_lengths"
LOG_PROBS = "log_probs"
LOG_PROB_LENGTHS = "log_prob_lengths"

Precision = Literal["FP32", "FP16"]


class ModelContractError(ValueError):
    """A released model that breaks the serving contract (names the file and the gap)."""


@dataclass(frozen=True)
class DynamicBatching:
    """Triton's dynamic batcher: wait up to ``max_queue_delay_microseconds`` to fill a batch.

    The delay only matters when an instance is idle (while it is busy, requests queue anyway), so
    it is kept short: it bounds what a lone request pays for the chance of company. Preferred
    sizes let the batcher dispatch at once when a good batch is already waiting.

    ``priority_by_bucket`` (off by default) gives each length bucket its own priority level so the
    queue is drained one shape at a time: Triton ends a batch at the first queued request whose
    shape differs, so mixed lengths in FIFO order make small batches. It does make batches larger
    (measured mean 13-17 vs 2 at 64 callers), but tritonserver 2.51 then stalls requests for
    ~500 ms at random (measured at every concurrency, even one caller), so it stays an
    experiment (``edgescribe bench serving --systems triton-dynamic-batching-priority,...``);
    coarse length buckets are the production answer. See docs/decisions/0200-triton-serving.md.
    """

    preferred_batch_sizes: tuple[int, ...] = (8, 16, 32)
    max_queue_delay_microseconds: int = 2_000
    priority_by_bucket: bool = False


@dataclass(frozen=True)
class TensorRTSettings:
    """TensorRT execution-provider settings for the production (GPU) rendering.

    FP32 by default: FP16 changes CTC log-probabilities and must pass the evaluation gate on a GPU
    before it is switched on (not measured here: no GPU on the build machine).
    """

    precision: Precision = "FP32"
    max_workspace_bytes: int = 1 << 30
    engine_cache_path: str = "/tmp/edgescribe-trt-cache"  # noqa: S108 - a path inside the container


@dataclass(frozen=True)
class TritonModelSpec:
    """Everything either rendering needs; renderings add nothing that is not derived from here."""

    name: str
    version: int
    onnx_path: Path
    vocabulary_size: int
    sample_rate: int = 16_000
    max_batch_size: int = 32
    dynamic_batching: DynamicBatching | None = field(default_factory=DynamicBatching)
    buckets: LengthBuckets = field(default_factory=LengthBuckets)
    gpu_instances: int = 1
    cpu_instances: int = 1
    intra_op_threads: int = 1
    tensorrt: TensorRTSettings | None = field(default_factory=TensorRTSettings)
    warmup: bool = True

    def __post_init__(self) -> None:
        validate_id(self.name, "Triton model name")
        if self.version < 1:
            raise ModelContractError(f"model version must be >= 1, got {self.version}")
        if self.max_batch_size < 1:
            raise ModelContractError(f"max_batch_size must be >= 1, got {self.max_batch_size}")
        if self.dynamic_batching is not None:
            too_big = [
                n for n in self.dynamic_batching.preferred_batch_sizes if n > self.max_batch_size
            ]
            if too_big:
                raise ModelContractError(
                    f"preferred batch sizes {too_big} exceed max_batch_size {self.max_batch_size}"
                )
        if self.intra_op_threads < 1 or self.cpu_instances < 1 or self.gpu_instances < 1:
            raise ModelContractError("thread and instance counts must be >= 1")
        if self.buckets.sample_rate != self.sample_rate:
            raise ModelContractError(
                f"bucket sample rate {self.buckets.sample_rate} != "
                f"model sample rate {self.sample_rate}"
            )

    def replace(self, **changes: object) -> TritonModelSpec:
        """A copy with some fields changed (e.g. the benchmark's batching-off twin)."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


def check_onnx_contract(onnx_path: Path) -> int | None:
    """Verify the ONNX file's inputs/outputs; return the vocabulary size if the graph fixes it.

    Raises :class:`ModelContractError` naming every mismatch at once.
    """
    import onnxruntime

    if not onnx_path.is_file():
        raise ModelContractError(f"{onnx_path}: no such model file")
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
    try:
        session = onnxruntime.InferenceSession(
            str(onnx_path), options, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
        raise ModelContractError(f"{onnx_path}: onnxruntime cannot load it: {exc}") from exc
    inputs = {node.name: node for node in session.get_inputs()}
    outputs = {node.name: node for node in session.get_outputs()}
    expected = {
        AUDIO: ("tensor(float)", 2, inputs),
        AUDIO_LENGTHS: ("tensor(int64)", 1, inputs),
        LOG_PROBS: ("tensor(float)", 3, outputs),
        LOG_PROB_LENGTHS: ("tensor(int64)", 1, outputs),
    }
    problems = []
    for name, (dtype, rank, where) in expected.items():
        node = where.get(name)
        if node is None:
            problems.append(f"missing tensor {name!r}")
        elif node.type != dtype or len(node.shape) != rank:
            problems.append(
                f"{name!r} is {node.type} rank {len(node.shape)}, expected {dtype} rank {rank}"
            )
    if problems:
        raise ModelContractError(f"{onnx_path}: " + "; ".join(problems))
    vocab = outputs[LOG_PROBS].shape[2]
    return vocab if isinstance(vocab, int) else None


def spec_for_release(
    model_dir: Path, *, name: str | None = None, **overrides: object
) -> TritonModelSpec:
    """The spec for the released model in ``model_dir`` (``manifest.json`` + its ONNX file)."""
    manifest_path = model_dir / "manifest.json"
    if not manifest_path.is_file():
        raise ModelContractError(f"{model_dir}: no manifest.json (not a released model directory)")
    manifest = ModelManifest.load(manifest_path)
    onnx_path = model_dir / manifest.file
    graph_vocab = check_onnx_contract(onnx_path)
    if graph_vocab is not None and graph_vocab != len(manifest.vocabulary):
        raise ModelContractError(
            f"{onnx_path}: log_probs has {graph_vocab} classes but the manifest lists "
            f"{len(manifest.vocabulary)} vocabulary symbols"
        )
    spec = TritonModelSpec(
        name=name or manifest.name,
        version=manifest.version,
        onnx_path=onnx_path,
        vocabulary_size=len(manifest.vocabulary),
        sample_rate=manifest.sample_rate,
        buckets=LengthBuckets(sample_rate=manifest.sample_rate),
    )
    return spec.replace(**overrides) if overrides else spec
