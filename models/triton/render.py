"""The two ``config.pbtxt`` renderings of one :class:`~models.triton.spec.TritonModelSpec`.

*production* — what the cloud serves: Triton's onnxruntime backend (``platform:
"onnxruntime_onnx"``) on GPU instances, TensorRT as the execution accelerator with CUDA as ORT's
fallback for nodes TensorRT cannot take, warm-up requests that build the TensorRT engines for the
smallest and the largest shape before the model reports ready (ORT widens its implicit optimisation
profile to every shape seen, so the first real request does not pay an engine build).

*local* — what tests, the demo and the benchmark serve with the ``tritonserver`` bundled in
nvidia-pytriton, which has no onnxruntime backend: the python backend runs ``model.py``
(:mod:`models.triton.python_model`), which opens the *same* ONNX file with onnxruntime on CPU,
threads capped. Inputs, outputs, batching and buckets are identical, so clients cannot tell the
two apart.

Both declare the contract's tensors with Triton's batch dimension implicit (``max_batch_size``):
``audio`` dims ``[-1]`` (samples, padded to a bucket), ``audio_lengths`` dims ``[1]`` reshaped to a
scalar so the model sees ``[batch]`` as the ONNX graph expects.
"""

from __future__ import annotations

from typing import Literal

from models.runtime.bucketing import LengthBuckets
from models.triton.spec import (
    AUDIO,
    AUDIO_LENGTHS,
    LOG_PROB_LENGTHS,
    LOG_PROBS,
    TritonModelSpec,
)

Flavour = Literal["production", "local"]

#: Parameter keys both renderings carry (read back by model.py and by clients).
BUCKETS_PARAMETER = "length_buckets_seconds"
ONNX_FILE_PARAMETER = "onnx_file"
INTRA_OP_PARAMETER = "intra_op_thread_count"
ONNX_FILENAME = "model.onnx"
#: ``dims: [ 1 ]`` reshaped to a scalar: the model sees ``[batch]`` (the ONNX contract's lengths).
_SCALAR = "reshape: { shape: [ ] }"


def bucket_priority_levels(buckets: LengthBuckets) -> int:
    """One priority level per bucket edge plus one for longer (overflow) audio."""
    return len(buckets.edges_seconds) + 1


def warmup_lengths_filename(n_samples: int) -> str:
    """File in ``<model>/warmup/`` holding one int64 ``audio_lengths`` value (raw little-endian)."""
    return f"audio_lengths_{n_samples}"


def warmup_shapes(spec: TritonModelSpec, flavour: Flavour) -> list[tuple[int, int]]:
    """``(batch_size, bucket_samples)`` warm-up requests: smallest always; largest on GPU only.

    On CPU a full-size warm-up (32 x 30 s) would take most of a minute per instance for nothing
    but a primed allocator; on GPU it is what makes TensorRT build the engine for the full range.
    """
    if not spec.warmup:
        return []
    smallest = (1, spec.buckets.edges_samples[0])
    if flavour == "local":
        return [smallest]
    largest = (spec.max_batch_size, spec.buckets.max_samples)
    return [smallest] if largest == smallest else [smallest, largest]


def _string_parameter(key: str, value: str) -> str:
    return f'parameters {{ key: "{key}" value: {{ string_value: "{value}" }} }}'


def _tensors(spec: TritonModelSpec) -> list[str]:
    return [
        "input [",
        f'  {{ name: "{AUDIO}" data_type: TYPE_FP32 dims: [ -1 ] }},',
        f'  {{ name: "{AUDIO_LENGTHS}" data_type: TYPE_INT64 dims: [ 1 ] {_SCALAR} }}',
        "]",
        "output [",
        f'  {{ name: "{LOG_PROBS}" data_type: TYPE_FP32 dims: [ -1, {spec.vocabulary_size} ] }},',
        f'  {{ name: "{LOG_PROB_LENGTHS}" data_type: TYPE_INT64 dims: [ 1 ] {_SCALAR} }}',
        "]",
    ]


def _batching(spec: TritonModelSpec) -> list[str]:
    if spec.dynamic_batching is None:
        return ["# dynamic batching off: every request executes alone (benchmark baseline)"]
    sizes = ", ".join(str(n) for n in spec.dynamic_batching.preferred_batch_sizes)
    lines = [
        "dynamic_batching {",
        f"  preferred_batch_size: [ {sizes} ]",
        f"  max_queue_delay_microseconds: {spec.dynamic_batching.max_queue_delay_microseconds}",
    ]
    if spec.dynamic_batching.priority_by_bucket:
        # Level i+1 = bucket i (shortest first); the last level takes overflow and unlabelled
        # requests. The batcher drains one level (= one shape) before the next.
        levels = bucket_priority_levels(spec.buckets)
        lines += [f"  priority_levels: {levels}", f"  default_priority_level: {levels}"]
    return [*lines, "}"]


def _warmup(spec: TritonModelSpec, flavour: Flavour) -> list[str]:
    shapes = warmup_shapes(spec, flavour)
    if not shapes:
        return []
    lines = ["model_warmup ["]
    for i, (batch, samples) in enumerate(shapes):
        comma = "," if i < len(shapes) - 1 else ""
        lines += [
            "  {",
            f'    name: "warmup_b{batch}_{samples}"',
            f"    batch_size: {batch}",
            f'    inputs {{ key: "{AUDIO}" value: {{ data_type: TYPE_FP32 dims: [ {samples} ] '
            "zero_data: true } }",
            f'    inputs {{ key: "{AUDIO_LENGTHS}" value: {{ data_type: TYPE_INT64 dims: [ 1 ] '
            f'input_data_file: "{warmup_lengths_filename(samples)}" }} }}',
            "  }" + comma,
        ]
    lines.append("]")
    return lines


def _gpu_accelerators(spec: TritonModelSpec) -> list[str]:
    if spec.tensorrt is None:
        return ["# no TensorRT: onnxruntime's CUDA execution provider runs the whole graph"]
    trt = spec.tensorrt
    parameters = {
        "precision_mode": trt.precision,
        "max_workspace_size_bytes": str(trt.max_workspace_bytes),
        "trt_engine_cache_enable": "1",
        "trt_engine_cache_path": trt.engine_cache_path,
        "trt_timing_cache_enable": "1",
        "trt_timing_cache_path": trt.engine_cache_path,
    }
    lines = [
        "optimization {",
        "  execution_accelerators {",
        "    gpu_execution_accelerator: [",
        "      {",
        '        name: "tensorrt"',
    ]
    lines += [f'        parameters {{ key: "{k}" value: "{v}" }}' for k, v in parameters.items()]
    lines += ["      }", "    ]", "  }", "}"]
    return lines


def render_config(spec: TritonModelSpec, flavour: Flavour) -> str:
    """``config.pbtxt`` text for ``spec`` in the given flavour."""
    lines = [
        f"# Generated by models.triton from {spec.onnx_path.name} version {spec.version}: do not edit",
        f'name: "{spec.name}"',
    ]
    if flavour == "production":
        lines.append('platform: "onnxruntime_onnx"')
    elif flavour == "local":
        lines.append('backend: "python"')
    else:
        raise ValueError(f"unknown flavour {flavour!r}: expected 'production' or 'local'")
    lines += [
        f"max_batch_size: {spec.max_batch_size}",
        f"version_policy: {{ specific: {{ versions: [ {spec.version} ] }} }}",
        *_tensors(spec),
        *_batching(spec),
    ]
    if flavour == "production":
        lines.append(f"instance_group [ {{ count: {spec.gpu_instances} kind: KIND_GPU }} ]")
        lines += _gpu_accelerators(spec)
    else:
        lines.append(f"instance_group [ {{ count: {spec.cpu_instances} kind: KIND_CPU }} ]")
    lines += [
        # Triton's ORT backend defaults intra-op threads to the core count per instance, which
        # oversubscribes the CPU as soon as there are two instances; model.py reads the same key.
        _string_parameter(INTRA_OP_PARAMETER, str(spec.intra_op_threads)),
        _string_parameter("inter_op_thread_count", "1"),
        _string_parameter(BUCKETS_PARAMETER, spec.buckets.format()),
    ]
    if flavour == "local":
        lines.append(_string_parameter(ONNX_FILE_PARAMETER, ONNX_FILENAME))
    lines += _warmup(spec, flavour)
    return "\n".join(lines) + "\n"
