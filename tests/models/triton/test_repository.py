"""Repository layout on disk, and publishing the production repository to the models bucket."""

from __future__ import annotations

from pathlib import Path

import boto3
import numpy as np
import pytest

from edgescribe.local.moto_server import MotoServer
from edgescribe.settings import ResourceNames
from models.runtime.manifest import sha256_file
from models.triton.publish import publish_repository
from models.triton.repository import write_model, write_repository
from models.triton.spec import TritonModelSpec


def test_local_repository_ships_the_released_onnx_bytes_and_model_py(
    cloud_spec: TritonModelSpec, tmp_path: Path
) -> None:
    model_dir = write_model(cloud_spec, tmp_path, "local")
    version_dir = model_dir / str(cloud_spec.version)

    assert sha256_file(version_dir / "model.onnx") == sha256_file(cloud_spec.onnx_path)
    assert (version_dir / "model.py").read_text().startswith('"""Triton python-backend model')
    assert (model_dir / "config.pbtxt").read_text().count('backend: "python"') == 1


def test_production_repository_has_no_python_model(
    cloud_spec: TritonModelSpec, tmp_path: Path
) -> None:
    model_dir = write_model(cloud_spec, tmp_path, "production")

    assert not (model_dir / str(cloud_spec.version) / "model.py").exists()
    assert (model_dir / str(cloud_spec.version) / "model.onnx").is_file()


def test_warmup_length_files_hold_one_little_endian_int64(
    cloud_spec: TritonModelSpec, tmp_path: Path
) -> None:
    model_dir = write_model(cloud_spec, tmp_path, "production")
    largest = cloud_spec.buckets.max_samples

    raw = (model_dir / "warmup" / f"audio_lengths_{largest}").read_bytes()
    assert np.frombuffer(raw, dtype="<i8").tolist() == [largest]


def test_rewriting_a_model_removes_stale_files(cloud_spec: TritonModelSpec, tmp_path: Path) -> None:
    """A repository regenerated in place must not keep an old version or a stale model.py."""
    write_model(cloud_spec.replace(version=cloud_spec.version + 1), tmp_path, "local")
    model_dir = write_model(cloud_spec, tmp_path, "production")

    assert sorted(p.name for p in model_dir.iterdir()) == sorted(
        ["config.pbtxt", str(cloud_spec.version), "warmup"]
    )


def test_two_models_with_one_name_are_refused(cloud_spec: TritonModelSpec, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="share the Triton model name"):
        write_repository([cloud_spec, cloud_spec], tmp_path, "local")


def test_publish_uploads_production_repository_under_triton_prefix_config_last(
    aws_env: MotoServer, cloud_spec: TritonModelSpec
) -> None:
    bucket = ResourceNames(stack="publish-test").models_bucket
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=bucket)

    published = publish_repository(cloud_spec, bucket, s3)

    prefix = f"triton/{cloud_spec.name}/{cloud_spec.name}"
    assert published.uri == f"s3://{bucket}/triton/{cloud_spec.name}"
    assert published.keys[-1] == f"{prefix}/config.pbtxt"
    model_key = f"{prefix}/{cloud_spec.version}/model.onnx"
    assert model_key in published.keys
    head = s3.head_object(Bucket=bucket, Key=model_key)
    assert head["Metadata"]["sha256"] == sha256_file(cloud_spec.onnx_path)
    config = s3.get_object(Bucket=bucket, Key=f"{prefix}/config.pbtxt")["Body"].read().decode()
    assert 'platform: "onnxruntime_onnx"' in config
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="triton/")["Contents"]
    assert sorted(o["Key"] for o in listed) == sorted(published.keys)
