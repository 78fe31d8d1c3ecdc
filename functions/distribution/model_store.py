"""Model files and manifests in the models bucket: immutable model bytes, re-signable manifests.

``storage_layout.model_key(name, version)`` holds the ONNX bytes; they never change once written
(``If-None-Match: *``), so a version number always means the same bytes. The manifest beside it
(``storage_layout.manifest_key``) may be rewritten, but only to re-sign it with a later
``expires_at`` — its ``sha256``/``size`` binding to the bytes never changes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, BinaryIO

from botocore.exceptions import ClientError
from pydantic import ValidationError

from functions.common.s3_errors import is_missing, is_precondition_failed
from functions.distribution.errors import VersionConflictError, VersionNotPublishedError
from models.runtime import storage_layout
from models.runtime.manifest import ModelManifest

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

#: Object metadata on the model bytes, so a retried publish can tell its own upload from another's.
SHA256_METADATA = "sha256"
#: Model names that would collide with other objects under ``models/``.
RESERVED_MODEL_NAMES = frozenset({"channels"})


class ModelStore:
    def __init__(self, s3: S3Client, bucket: str) -> None:
        self._s3 = s3
        self._bucket = bucket

    @property
    def bucket(self) -> str:
        return self._bucket

    def read_manifest(self, name: str, version: int) -> tuple[ModelManifest, str] | None:
        """The stored manifest and its ETag, or ``None`` when the version is not published."""
        try:
            response = self._s3.get_object(
                Bucket=self._bucket, Key=storage_layout.manifest_key(name, version)
            )
        except ClientError as exc:
            if is_missing(exc):
                return None
            raise
        body = response["Body"].read()
        try:
            manifest = ModelManifest.from_json(body)
        except ValidationError as exc:
            raise VersionNotPublishedError(
                f"{storage_layout.manifest_key(name, version)} is not a valid manifest: {exc}"
            ) from exc
        return manifest, response["ETag"].strip('"')

    def require_manifest(self, name: str, version: int) -> tuple[ModelManifest, str]:
        found = self.read_manifest(name, version)
        if found is None:
            raise VersionNotPublishedError(
                f"version {version} of {name!r} is not published; publish it first "
                "(edgescribe model publish)"
            )
        return found

    def write_manifest(self, manifest: ModelManifest, *, expected_etag: str | None) -> None:
        """Write a manifest: create-only without ``expected_etag``, else replace that exact one."""
        condition: dict[str, str] = (
            {"IfMatch": f'"{expected_etag}"'} if expected_etag else {"IfNoneMatch": "*"}
        )
        key = storage_layout.manifest_key(manifest.name, manifest.version)
        try:
            self._s3.put_object(
                Bucket=self._bucket,
                Key=key,
                Body=manifest.to_json().encode(),
                ContentType="application/json",
                **condition,  # type: ignore[arg-type]
            )
        except ClientError as exc:
            if is_precondition_failed(exc):
                raise VersionConflictError(
                    f"{key} was written by someone else meanwhile; read it and try again"
                ) from exc
            raise

    def put_model_bytes(self, name: str, version: int, body: BinaryIO, sha256: str) -> None:
        """Upload the model once; a retry of the same bytes is fine, other bytes are a conflict."""
        key = storage_layout.model_key(name, version)
        try:
            self._s3.put_object(
                Bucket=self._bucket,
                Key=key,
                Body=body,
                ContentType="application/octet-stream",
                Metadata={SHA256_METADATA: sha256},
                IfNoneMatch="*",
            )
            return
        except ClientError as exc:
            if not is_precondition_failed(exc):
                raise
        existing = self._s3.head_object(Bucket=self._bucket, Key=key)
        if existing.get("Metadata", {}).get(SHA256_METADATA) != sha256:
            raise VersionConflictError(
                f"{key} already holds different bytes; versions are immutable, publish a new version"
            )

    def published_versions(self, name: str) -> list[int]:
        """Every version of ``name`` with an object under its prefix, ascending."""
        prefix = storage_layout.model_prefix(name, 1).rpartition("/")[0] + "/"
        versions: set[int] = set()
        paginator = self._s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self._bucket, Prefix=prefix, Delimiter="/"):
            for common in page.get("CommonPrefixes", []):
                segment = common["Prefix"][len(prefix) :].rstrip("/")
                if segment.isdigit():
                    versions.add(int(segment))
        return sorted(versions)

    def presigned_model_url(self, name: str, version: int, expires_in: int) -> str:
        """A GET URL for the model bytes that stops working after ``expires_in`` seconds."""
        return self._s3.generate_presigned_url(
            "get_object",
            Params={"Bucket": self._bucket, "Key": storage_layout.model_key(name, version)},
            ExpiresIn=expires_in,
        )
