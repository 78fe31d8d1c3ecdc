"""A spec is derived from the released files and refuses models that break the serving contract."""

from __future__ import annotations

from pathlib import Path

import pytest
from onnx import TensorProto, helper

from models.runtime.bucketing import LengthBuckets
from models.runtime.manifest import ModelManifest, sha256_file
from models.triton.spec import (
    DynamicBatching,
    ModelContractError,
    TritonModelSpec,
    check_onnx_contract,
    spec_for_release,
)


def write_release(directory: Path, model_bytes: bytes, **manifest_fields: object) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    model = directory / "model.onnx"
    model.write_bytes(model_bytes)
    manifest = ModelManifest(
        name="candidate",
        version=7,
        sha256=sha256_file(model),
        size=model.stat().st_size,
        **manifest_fields,  # type: ignore[arg-type]
    )
    (directory / "manifest.json").write_text(manifest.to_json())
    return directory


def identity_model(input_name: str, output_name: str) -> bytes:
    graph = helper.make_graph(
        [helper.make_node("Identity", [input_name], [output_name])],
        "wrong",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, ["b", "t"])],
        [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, ["b", "t"])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    return bytes(model.SerializeToString())


def test_spec_takes_name_version_vocabulary_and_rate_from_the_release(
    cloud_model_dir: Path,
) -> None:
    manifest = ModelManifest.load(cloud_model_dir / "manifest.json")
    spec = spec_for_release(cloud_model_dir)

    assert (spec.name, spec.version) == (manifest.name, manifest.version)
    assert spec.vocabulary_size == len(manifest.vocabulary)
    assert spec.sample_rate == manifest.sample_rate
    assert spec.onnx_path == cloud_model_dir / manifest.file


def test_rejects_model_without_the_contract_tensors(tmp_path: Path) -> None:
    release = write_release(tmp_path / "bad", identity_model("x", "y"))

    with pytest.raises(ModelContractError) as caught:
        spec_for_release(release)
    message = str(caught.value)
    for name in ("audio", "audio_lengths", "log_probs", "log_prob_lengths"):
        assert f"missing tensor '{name}'" in message


def test_rejects_manifest_whose_vocabulary_disagrees_with_the_graph(
    cloud_model_dir: Path, tmp_path: Path
) -> None:
    release = write_release(
        tmp_path / "short-vocab",
        (cloud_model_dir / "model.onnx").read_bytes(),
        vocabulary=["<blank>", " ", "a"],
    )

    with pytest.raises(ModelContractError, match="manifest lists 3 vocabulary symbols"):
        spec_for_release(release)


def test_rejects_directory_without_manifest(tmp_path: Path) -> None:
    with pytest.raises(ModelContractError, match=r"no manifest\.json"):
        spec_for_release(tmp_path)


def test_rejects_unloadable_onnx_bytes(tmp_path: Path) -> None:
    release = write_release(tmp_path / "garbage", b"not an onnx graph at all")

    with pytest.raises(ModelContractError, match="onnxruntime cannot load it"):
        spec_for_release(release)


def test_contract_check_reads_the_vocabulary_size_from_the_graph(cloud_model_dir: Path) -> None:
    manifest = ModelManifest.load(cloud_model_dir / "manifest.json")
    assert check_onnx_contract(cloud_model_dir / "model.onnx") == len(manifest.vocabulary)


def test_preferred_batch_size_above_max_batch_size_is_refused(cloud_spec: TritonModelSpec) -> None:
    with pytest.raises(ModelContractError, match=r"preferred batch sizes \[64\] exceed"):
        cloud_spec.replace(dynamic_batching=DynamicBatching(preferred_batch_sizes=(8, 64)))


def test_hostile_model_name_is_refused(cloud_spec: TritonModelSpec) -> None:
    with pytest.raises(ValueError, match="invalid Triton model name"):
        cloud_spec.replace(name="../../etc")


def test_bucket_rate_must_match_model_rate(cloud_spec: TritonModelSpec) -> None:
    with pytest.raises(ModelContractError, match="bucket sample rate 8000"):
        cloud_spec.replace(buckets=LengthBuckets(sample_rate=8000))
