"""Publish one model version: immutable bytes, then a manifest signed with a fresh expiry.

Order matters for devices: the model bytes are uploaded first and the manifest last, so a device
(or a promote) that can read a manifest can always fetch the bytes it describes. Publishing the
same bytes again is a no-op that reports ``already_published``; publishing *different* bytes under
an existing version is refused (``VersionConflictError``): a version number means one artifact
forever, or anti-rollback and audits mean nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from functions.distribution.errors import ArtifactMismatchError, VersionConflictError
from functions.distribution.model_store import RESERVED_MODEL_NAMES, ModelStore
from functions.distribution.signing import ManifestSigner
from models.runtime import storage_layout
from models.runtime.artifacts import ModelArtifactError, load_model_artifact
from models.runtime.manifest import ModelManifest, sha256_file


@dataclass(frozen=True)
class PublishedModel:
    name: str
    version: int
    sha256: str
    size: int
    model_key: str
    manifest_key: str
    expires_at: datetime | None
    already_published: bool


def publish_model_dir(
    store: ModelStore,
    model_dir: Path,
    signer: ManifestSigner,
    *,
    now: datetime,
    manifest_ttl: timedelta,
    version: int | None = None,
) -> PublishedModel:
    """Publish ``model_dir`` (``model.onnx`` + ``manifest.json``), optionally as another version."""
    try:
        artifact = load_model_artifact(model_dir)
    except ModelArtifactError as exc:
        raise ArtifactMismatchError(str(exc)) from exc
    manifest = artifact.manifest
    if version is not None and version != manifest.version:
        manifest = manifest.model_copy(update={"version": version, "signatures": []})
    return publish_model_file(
        store, artifact.model_path, manifest, signer, now=now, manifest_ttl=manifest_ttl
    )


def publish_model_file(
    store: ModelStore,
    model_path: Path,
    manifest: ModelManifest,
    signer: ManifestSigner,
    *,
    now: datetime,
    manifest_ttl: timedelta,
) -> PublishedModel:
    """Upload ``model_path`` and ``manifest`` (which must describe exactly those bytes)."""
    storage_layout.validate_id(manifest.name, "model name")
    if manifest.name in RESERVED_MODEL_NAMES:
        raise ArtifactMismatchError(f"model name {manifest.name!r} is reserved; choose another")
    size = model_path.stat().st_size
    if size != manifest.size:
        raise ArtifactMismatchError(
            f"{model_path}: {size} bytes, but the manifest says {manifest.size}"
        )
    digest = sha256_file(model_path)
    if digest != manifest.sha256:
        raise ArtifactMismatchError(
            f"{model_path}: sha256 {digest} does not match the manifest's {manifest.sha256}"
        )

    keys = {
        "model_key": storage_layout.model_key(manifest.name, manifest.version),
        "manifest_key": storage_layout.manifest_key(manifest.name, manifest.version),
    }
    existing = store.read_manifest(manifest.name, manifest.version)
    if existing is not None:
        stored, _ = existing
        if stored.sha256 != digest:
            raise VersionConflictError(
                f"version {manifest.version} of {manifest.name!r} is already published with "
                f"sha256 {stored.sha256}; versions are immutable, publish a new version"
            )
        return PublishedModel(
            name=stored.name,
            version=stored.version,
            sha256=stored.sha256,
            size=stored.size,
            expires_at=stored.expires_at,
            already_published=True,
            **keys,
        )

    with model_path.open("rb") as body:
        store.put_model_bytes(manifest.name, manifest.version, body, digest)
    signed = signer.sign_manifest(manifest.model_copy(update={"expires_at": now + manifest_ttl}))
    store.write_manifest(signed, expected_etag=None)
    return PublishedModel(
        name=signed.name,
        version=signed.version,
        sha256=digest,
        size=size,
        expires_at=signed.expires_at,
        already_published=False,
        **keys,
    )
