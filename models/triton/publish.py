"""Publish the production model repository to the models bucket, where Triton reads it.

Triton accepts ``--model-repository=s3://<bucket>/<prefix>``; the prefix comes from
:func:`models.runtime.storage_layout.triton_repository_prefix` (``triton/<name>``), so a model
named ``edgescribe-cloud`` is served from ``s3://<models bucket>/triton/edgescribe-cloud`` and its
files live at ``triton/edgescribe-cloud/edgescribe-cloud/config.pbtxt`` and
``.../<version>/model.onnx``.

Order matters for a server polling the bucket: the version directory (model, warm-up files) is
uploaded first and ``config.pbtxt`` last, so a poller never sees a config that names a version
whose model file is not there yet. The published ONNX object carries the manifest's sha256 as
metadata so an operator can tell which release a repository serves.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from models.runtime.manifest import sha256_file
from models.runtime.storage_layout import triton_repository_prefix
from models.triton.repository import write_model
from models.triton.spec import TritonModelSpec

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


@dataclass(frozen=True)
class PublishedRepository:
    bucket: str
    prefix: str
    keys: tuple[str, ...]

    @property
    def uri(self) -> str:
        """What to pass to ``tritonserver --model-repository``."""
        return f"s3://{self.bucket}/{self.prefix}"


def publish_repository(
    spec: TritonModelSpec, bucket: str, s3_client: S3Client | None = None
) -> PublishedRepository:
    """Render the production repository for ``spec`` and upload it under its Triton prefix."""
    if s3_client is None:
        import boto3

        s3_client = boto3.client("s3")
    prefix = triton_repository_prefix(spec.name)
    with tempfile.TemporaryDirectory(prefix="edgescribe-triton-publish-") as scratch:
        root = Path(scratch)
        model_dir = write_model(spec, root, "production")
        files = sorted(p for p in model_dir.rglob("*") if p.is_file())
        config = model_dir / "config.pbtxt"
        ordered = [p for p in files if p != config] + [config]
        keys = []
        for path in ordered:
            key = f"{prefix}/{path.relative_to(root).as_posix()}"
            extra: dict[str, object] = {}
            if path.suffix == ".onnx":
                extra = {"Metadata": {"sha256": sha256_file(path)}}
            s3_client.upload_file(str(path), bucket, key, ExtraArgs=extra or None)
            keys.append(key)
    return PublishedRepository(bucket=bucket, prefix=prefix, keys=tuple(keys))
