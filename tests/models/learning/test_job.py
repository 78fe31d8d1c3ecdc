"""The training job against a real moto server: spec in, candidate + gate report + status out."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import boto3
import pytest

from functions.learning.gate import GatePolicy
from functions.learning.job_store import JobStore
from functions.learning.records import (
    GateReport,
    JobRecord,
    TrainingExample,
    TrainingJobSpec,
)
from models.learning.clips import load_clips
from models.learning.job import run_job
from models.learning.recipes import RecipeConfig
from models.runtime import storage_layout
from models.runtime.artifacts import (
    DEFAULT_MODEL_NAME,
    released_checkpoint,
    released_model_dir,
)
from models.runtime.manifest import ModelManifest
from models.runtime.transcript import ModelRef

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from edgescribe.local.moto_server import MotoServer

TENANT = "clinic"


@dataclass
class Buckets:
    s3: S3Client
    models: str
    recordings: str


@pytest.fixture
def buckets(aws_env: MotoServer) -> Buckets:
    s3 = boto3.client("s3")
    suffix = uuid.uuid4().hex[:8]
    found = Buckets(s3=s3, models=f"models-{suffix}", recordings=f"recordings-{suffix}")
    for bucket in (found.models, found.recordings):
        s3.create_bucket(Bucket=bucket)
    return found


def _publish_v1(buckets: Buckets, *, with_checkpoint: bool = True) -> None:
    folder = released_model_dir()
    buckets.s3.upload_file(
        str(folder / "model.onnx"), buckets.models, storage_layout.model_key(DEFAULT_MODEL_NAME, 1)
    )
    buckets.s3.upload_file(
        str(folder / "manifest.json"),
        buckets.models,
        storage_layout.manifest_key(DEFAULT_MODEL_NAME, 1),
    )
    if with_checkpoint:
        buckets.s3.upload_file(
            str(released_checkpoint()),
            buckets.models,
            storage_layout.checkpoint_key(DEFAULT_MODEL_NAME, 1),
        )


def _dataset(buckets: Buckets, name: str, count: int, *, corrupt: int = 0) -> list[str]:
    lines = []
    for index, clip in enumerate(load_clips(name)[:count]):
        key = storage_layout.recording_key(TENANT, f"{name}-{index}", "ogg")
        body = b"OggS not really" if index < corrupt else clip.path.read_bytes()
        buckets.s3.put_object(Bucket=buckets.recordings, Key=key, Body=body)
        example = TrainingExample(
            audio_bucket=buckets.recordings,
            audio_key=key,
            text=clip.text,
            feedback_id=f"fb-{name}-{index}",
            route="finetune",
        )
        lines.append(example.model_dump_json())
    return lines


def _start(buckets: Buckets, job_id: str, *, corrupt: int = 0) -> JobStore:
    store = JobStore(buckets.s3, buckets.models)
    for filename, lines in (
        ("finetune.jsonl", _dataset(buckets, "corrections", 12, corrupt=corrupt)),
        ("domain-eval.jsonl", _dataset(buckets, "domain_eval", 4)),
    ):
        buckets.s3.put_object(
            Bucket=buckets.models,
            Key=storage_layout.training_job_key(job_id, filename),
            Body="\n".join(lines).encode(),
        )
    now = datetime.now(UTC)
    spec = TrainingJobSpec(
        job_id=job_id,
        window="20261125T14",
        created_at=now,
        reason="test",
        models_bucket=buckets.models,
        base_model=ModelRef(name=DEFAULT_MODEL_NAME, version=1),
        datasets={"finetune": storage_layout.training_job_key(job_id, "finetune.jsonl")},
        domain_eval=storage_layout.training_job_key(job_id, "domain-eval.jsonl"),
    )
    buckets.s3.put_object(
        Bucket=buckets.models,
        Key=storage_layout.training_job_key(job_id, "spec.json"),
        Body=spec.model_dump_json().encode(),
    )
    store.create(
        JobRecord(
            job_id=job_id, status="started", window=spec.window, created_at=now, updated_at=now
        )
    )
    return store


def _read(buckets: Buckets, key: str) -> bytes:
    return buckets.s3.get_object(Bucket=buckets.models, Key=key)["Body"].read()


def test_a_job_leaves_a_candidate_its_checkpoint_and_a_gate_report(buckets: Buckets) -> None:
    _publish_v1(buckets)
    store = _start(buckets, "retrain-a", corrupt=1)
    result = run_job(
        buckets.s3,
        buckets.models,
        "retrain-a",
        recipe=RecipeConfig(steps=30),
        policy=GatePolicy(),
        echo=lambda line: None,
    )
    assert result.candidate == ModelRef(name=DEFAULT_MODEL_NAME, version=2)
    manifest = ModelManifest.model_validate_json(
        _read(buckets, f"{storage_layout.candidate_prefix('retrain-a')}/manifest.json")
    )
    assert (manifest.version, manifest.parent_version) == (2, 1)
    assert manifest.quantization == "int8-static"
    assert manifest.training_data["corrections"] == 11  # the corrupt clip was skipped, not fatal
    assert _read(buckets, storage_layout.checkpoint_key(DEFAULT_MODEL_NAME, 2))
    gate = GateReport.model_validate_json(
        _read(buckets, storage_layout.training_job_key("retrain-a", "gate.json"))
    )
    assert gate == result.gate
    assert [item.name for item in gate.sets] == [
        "domain",
        "replay_holdout",
        "real_general",
        "samples",
    ]
    found = store.get("retrain-a")
    assert found is not None
    record = found[0]
    assert record.status == ("gate_passed" if gate.passed else "gate_failed")
    assert record.candidate == result.candidate
    log = _read(buckets, storage_layout.training_job_key("retrain-a", "train.log")).decode()
    assert "skipped fb-corrections-0" in log


def test_a_job_without_the_base_checkpoint_fails_visibly(buckets: Buckets) -> None:
    _publish_v1(buckets, with_checkpoint=False)
    store = _start(buckets, "retrain-b")
    with pytest.raises(RuntimeError, match="cannot fetch"):
        run_job(buckets.s3, buckets.models, "retrain-b", echo=lambda line: None)
    found = store.get("retrain-b")
    assert found is not None
    assert found[0].status == "failed"
    assert "checkpoints/edgescribe-edge/1.pt" in found[0].detail
