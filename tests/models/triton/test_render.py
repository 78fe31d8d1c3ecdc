"""Both renderings parse as Triton model configs and say what the spec says.

Parsing uses Triton's own protobuf schema (``model_config_pb2`` shipped in tritonclient) via
``text_format``, the same grammar tritonserver reads, so a typo in a field name fails here rather
than at model load in the cloud.
"""

from __future__ import annotations

import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from models.runtime.bucketing import LengthBuckets
from models.triton.render import render_config
from models.triton.spec import DynamicBatching, TensorRTSettings, TritonModelSpec


def parse(text: str) -> mc.ModelConfig:
    return text_format.Parse(text, mc.ModelConfig())


def parameters(config: mc.ModelConfig) -> dict[str, str]:
    return {key: value.string_value for key, value in config.parameters.items()}


def test_production_config_declares_onnxruntime_on_gpu_with_dynamic_batching(
    cloud_spec: TritonModelSpec,
) -> None:
    config = parse(render_config(cloud_spec, "production"))

    assert config.name == cloud_spec.name
    assert config.platform == "onnxruntime_onnx"
    assert config.max_batch_size == cloud_spec.max_batch_size
    assert config.HasField("dynamic_batching")
    batching = cloud_spec.dynamic_batching
    assert batching is not None
    assert list(config.dynamic_batching.preferred_batch_size) == list(
        batching.preferred_batch_sizes
    )
    assert (
        config.dynamic_batching.max_queue_delay_microseconds
        == batching.max_queue_delay_microseconds
    )
    assert [(g.kind, g.count) for g in config.instance_group] == [
        (mc.ModelInstanceGroup.KIND_GPU, 1)
    ]
    assert list(config.version_policy.specific.versions) == [cloud_spec.version]


def test_priority_experiment_gives_each_length_bucket_its_own_level(
    cloud_spec: TritonModelSpec,
) -> None:
    """Opt-in experiment: one queue level per bucket keeps same-shape requests together;
    clients always send ``LengthBuckets.priority`` (ignored by models without levels)."""
    spec = cloud_spec.replace(dynamic_batching=DynamicBatching(priority_by_bucket=True))
    config = parse(render_config(spec, "production"))
    levels = len(cloud_spec.buckets.edges_seconds) + 1

    assert config.dynamic_batching.priority_levels == levels
    assert config.dynamic_batching.default_priority_level == levels
    edges = cloud_spec.buckets.edges_samples
    priorities = [cloud_spec.buckets.priority(edge) for edge in edges]
    assert priorities == list(range(1, levels))
    assert cloud_spec.buckets.priority(edges[-1] + 1) == levels


def test_default_batching_keeps_one_fifo_queue(cloud_spec: TritonModelSpec) -> None:
    """Priority levels stall tritonserver 2.51 for ~500 ms at random (ADR 0200): off by default."""
    for flavour in ("production", "local"):
        config = parse(render_config(cloud_spec, flavour))
        assert config.dynamic_batching.priority_levels == 0


def test_production_config_uses_tensorrt_with_engine_cache(cloud_spec: TritonModelSpec) -> None:
    spec = cloud_spec.replace(tensorrt=TensorRTSettings(precision="FP16"))
    config = parse(render_config(spec, "production"))

    (accelerator,) = config.optimization.execution_accelerators.gpu_execution_accelerator
    assert accelerator.name == "tensorrt"
    assert accelerator.parameters["precision_mode"] == "FP16"
    assert accelerator.parameters["trt_engine_cache_enable"] == "1"
    assert int(accelerator.parameters["max_workspace_size_bytes"]) == 1 << 30


def test_production_warmup_covers_smallest_and_largest_shape(cloud_spec: TritonModelSpec) -> None:
    """TensorRT builds engines for shapes it has seen: warm-up must span the whole range."""
    config = parse(render_config(cloud_spec, "production"))

    shapes = [(w.batch_size, list(w.inputs["audio"].dims)) for w in config.model_warmup]
    edges = cloud_spec.buckets.edges_samples
    assert shapes == [(1, [edges[0]]), (cloud_spec.max_batch_size, [edges[-1]])]
    assert all(w.inputs["audio"].zero_data for w in config.model_warmup)


def test_local_config_runs_python_backend_on_cpu_with_capped_threads(
    cloud_spec: TritonModelSpec,
) -> None:
    spec = cloud_spec.replace(cpu_instances=2, intra_op_threads=1)
    config = parse(render_config(spec, "local"))

    assert config.backend == "python"
    assert config.platform == ""
    assert [(g.kind, g.count) for g in config.instance_group] == [
        (mc.ModelInstanceGroup.KIND_CPU, 2)
    ]
    assert parameters(config)["intra_op_thread_count"] == "1"
    assert parameters(config)["onnx_file"] == "model.onnx"
    assert not config.optimization.execution_accelerators.gpu_execution_accelerator


def test_both_renderings_declare_identical_tensors_batching_and_buckets(
    cloud_spec: TritonModelSpec,
) -> None:
    """Clients cannot tell the renderings apart: same tensors, batcher and bucket edges."""
    production = parse(render_config(cloud_spec, "production"))
    local = parse(render_config(cloud_spec, "local"))

    assert production.input == local.input
    assert production.output == local.output
    assert production.dynamic_batching == local.dynamic_batching
    assert production.max_batch_size == local.max_batch_size
    buckets = parameters(production)["length_buckets_seconds"]
    assert buckets == parameters(local)["length_buckets_seconds"]
    assert LengthBuckets.parse(buckets) == cloud_spec.buckets


def test_tensors_follow_the_onnx_contract_with_scalar_lengths(cloud_spec: TritonModelSpec) -> None:
    config = parse(render_config(cloud_spec, "production"))

    inputs = {t.name: t for t in config.input}
    outputs = {t.name: t for t in config.output}
    assert inputs["audio"].data_type == mc.TYPE_FP32
    assert list(inputs["audio"].dims) == [-1]
    assert inputs["audio_lengths"].data_type == mc.TYPE_INT64
    assert list(inputs["audio_lengths"].reshape.shape) == []
    assert list(outputs["log_probs"].dims) == [-1, cloud_spec.vocabulary_size]
    assert list(outputs["log_prob_lengths"].reshape.shape) == []


def test_batching_off_renders_no_dynamic_batcher(cloud_spec: TritonModelSpec) -> None:
    spec = cloud_spec.replace(name="edgescribe-cloud-nobatch", dynamic_batching=None)
    for flavour in ("production", "local"):
        config = parse(render_config(spec, flavour))
        assert not config.HasField("dynamic_batching")
        assert config.max_batch_size == cloud_spec.max_batch_size


def test_custom_queue_delay_and_preferred_sizes_reach_the_config(
    cloud_spec: TritonModelSpec,
) -> None:
    spec = cloud_spec.replace(
        dynamic_batching=DynamicBatching(
            preferred_batch_sizes=(2, 32), max_queue_delay_microseconds=750
        )
    )
    config = parse(render_config(spec, "local"))

    assert list(config.dynamic_batching.preferred_batch_size) == [2, 32]
    assert config.dynamic_batching.max_queue_delay_microseconds == 750


def test_unknown_flavour_is_refused(cloud_spec: TritonModelSpec) -> None:
    with pytest.raises(ValueError, match="unknown flavour"):
        render_config(cloud_spec, "staging")  # type: ignore[arg-type]
