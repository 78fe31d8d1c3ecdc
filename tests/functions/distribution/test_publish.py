from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from functions.distribution.errors import ArtifactMismatchError, VersionConflictError
from functions.distribution.service import DEFAULT_MANIFEST_TTL, DistributionService
from functions.distribution.signing import ManifestSigner
from models.runtime import storage_layout
from models.runtime.artifacts import released_model_dir
from models.runtime.manifest import ModelManifest, count_valid_signatures, sha256_file
from tests.functions.batch_stack import BatchStack
from tests.functions.distribution.artifacts import make_model_dir
from tests.functions.distribution.conftest import Clock


def _get(stack: BatchStack, key: str) -> bytes:
    return stack.s3.get_object(Bucket=stack.names.models_bucket, Key=key)["Body"].read()


def test_publish_stores_bytes_and_a_signed_expiring_manifest_under_the_layout_keys(
    service: DistributionService,
    batch_stack: BatchStack,
    signer: ManifestSigner,
    clock: Clock,
    tmp_path: Path,
) -> None:
    folder = make_model_dir(tmp_path, 4)
    published = service.publish(folder)
    assert not published.already_published
    assert published.model_key == storage_layout.model_key("edgescribe-edge", 4)
    assert _get(batch_stack, published.model_key) == (folder / "model.onnx").read_bytes()
    manifest = ModelManifest.from_json(
        _get(batch_stack, storage_layout.manifest_key("edgescribe-edge", 4))
    )
    assert manifest.expires_at == clock.now + DEFAULT_MANIFEST_TTL
    assert count_valid_signatures(manifest, signer.trusted_keys()) == 1


def test_publishing_the_same_version_again_changes_nothing(
    service: DistributionService, batch_stack: BatchStack, tmp_path: Path
) -> None:
    folder = make_model_dir(tmp_path, 2)
    service.publish(folder)
    before = _get(batch_stack, storage_layout.manifest_key("edgescribe-edge", 2))
    again = service.publish(folder)
    assert again.already_published
    assert _get(batch_stack, storage_layout.manifest_key("edgescribe-edge", 2)) == before


def test_rejects_different_bytes_under_a_published_version(
    service: DistributionService, batch_stack: BatchStack, tmp_path: Path
) -> None:
    service.publish(make_model_dir(tmp_path / "a", 2))
    with pytest.raises(VersionConflictError, match="immutable"):
        service.publish(make_model_dir(tmp_path / "b", 2, payload=b"other bytes" * 100))
    assert (
        _get(batch_stack, storage_layout.model_key("edgescribe-edge", 2))
        == (tmp_path / "a" / "edgescribe-edge-v2" / "model.onnx").read_bytes()
    )


def test_rejects_a_model_file_that_does_not_match_its_manifest(
    service: DistributionService, batch_stack: BatchStack, tmp_path: Path
) -> None:
    folder = make_model_dir(tmp_path, 5)
    (folder / "model.onnx").write_bytes(b"tampered after the manifest was written")
    with pytest.raises(ArtifactMismatchError, match="bytes, but the manifest says"):
        service.publish(folder)
    assert service.models.published_versions("edgescribe-edge") == []


def test_rejects_a_model_name_that_collides_with_the_channel_folder(
    service: DistributionService, tmp_path: Path
) -> None:
    with pytest.raises(ArtifactMismatchError, match="reserved"):
        service.publish(make_model_dir(tmp_path, 1, name="channels"))


def test_publish_can_renumber_a_released_folder(
    service: DistributionService, batch_stack: BatchStack, signer: ManifestSigner, tmp_path: Path
) -> None:
    published = service.publish(make_model_dir(tmp_path, 1), version=7)
    assert published.version == 7
    manifest = ModelManifest.from_json(_get(batch_stack, published.manifest_key))
    assert manifest.version == 7
    assert count_valid_signatures(manifest, signer.trusted_keys()) == 1


def test_publish_without_a_signing_key_is_refused(batch_stack: BatchStack, tmp_path: Path) -> None:
    from functions.distribution.errors import SigningKeyError

    unsigned = DistributionService(batch_stack.s3, batch_stack.names.models_bucket)
    with pytest.raises(SigningKeyError, match="no signing key"):
        unsigned.publish(make_model_dir(tmp_path, 1))


@pytest.mark.skipif(
    not (released_model_dir() / "manifest.json").exists(), reason="no released edge model yet"
)
def test_the_released_edge_model_publishes_and_round_trips_byte_for_byte(
    service: DistributionService, batch_stack: BatchStack, signer: ManifestSigner, tmp_path: Path
) -> None:
    source = released_model_dir()
    released = json.loads((source / "manifest.json").read_text())
    published = service.publish(source)
    assert published.sha256 == released["sha256"] == sha256_file(source / "model.onnx")
    downloaded = tmp_path / "model.onnx"
    downloaded.write_bytes(_get(batch_stack, published.model_key))
    assert sha256_file(downloaded) == released["sha256"]
    manifest = ModelManifest.from_json(_get(batch_stack, published.manifest_key))
    assert count_valid_signatures(manifest, signer.trusted_keys()) == 1
    assert manifest.expires_at is not None
    assert manifest.expires_at - manifest.created_at > timedelta(0)
