"""Real models on real channels for the shadow and promotion tests.

``stable`` is the released INT8 edge model published as ``edgescribe-edge`` v1. The candidate is
the released fp32 cloud model's bytes under a manifest that names them ``edgescribe-edge`` v2 (a
model from the same training run, so it really transcribes, and really differs a little): what a
retraining job leaves in its candidate folder.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from models.runtime import storage_layout
from models.runtime.artifacts import CLOUD_MODEL_NAME, DEFAULT_MODEL_NAME, released_model_dir
from models.runtime.manifest import ModelManifest

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from functions.distribution.service import DistributionService

STABLE_VERSION = 1
CANDIDATE_VERSION = 2


def candidate_dir(root: Path, version: int = CANDIDATE_VERSION) -> Path:
    """A model folder: the cloud model's bytes as ``edgescribe-edge`` v``version`` (unsigned)."""
    source = released_model_dir(CLOUD_MODEL_NAME)
    folder = root / f"candidate-v{version}"
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source / "model.onnx", folder / "model.onnx")
    manifest = ModelManifest.load(source / "manifest.json").model_copy(
        update={
            "name": DEFAULT_MODEL_NAME,
            "version": version,
            "parent_version": STABLE_VERSION,
            "signatures": [],
            "expires_at": None,
        }
    )
    (folder / "manifest.json").write_text(manifest.to_json(), encoding="utf-8")
    return folder


def publish_stable(service: DistributionService) -> None:
    """The released edge model as stable v1."""
    service.publish(released_model_dir(DEFAULT_MODEL_NAME), version=STABLE_VERSION)
    service.promote("stable", STABLE_VERSION, actor="test", name=DEFAULT_MODEL_NAME)


def publish_shadow_candidate(service: DistributionService, root: Path) -> None:
    """The candidate published as v2 and put on the shadow channel."""
    service.publish(candidate_dir(root))
    service.promote("shadow", CANDIDATE_VERSION, actor="test", name=DEFAULT_MODEL_NAME)


def stage_candidate(s3: S3Client, bucket: str, job_id: str, root: Path) -> Path:
    """Leave the candidate where a training job leaves it: ``candidate_prefix(job_id)``."""
    folder = candidate_dir(root)
    prefix = storage_layout.candidate_prefix(job_id)
    for name in ("model.onnx", "manifest.json"):
        s3.put_object(Bucket=bucket, Key=f"{prefix}/{name}", Body=(folder / name).read_bytes())
    return folder


class FakeMonotonic:
    """A monotonic clock that moves only when the test says so (cache expiry without sleeping)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now
