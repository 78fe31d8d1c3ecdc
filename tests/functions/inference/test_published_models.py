"""The one loader of published models (shadow runner and channel following): real S3 over moto,
real onnxruntime, and each check of the module doc failing on its own."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from edgescribe.samples import Sample
from functions.distribution.service import DistributionService
from functions.distribution.signing import generate_signing_key
from functions.inference.published_models import (
    MAX_MANIFEST_BYTES,
    PublishedModelError,
    load_published_model,
)
from models.runtime import storage_layout
from models.runtime.artifacts import ModelIntegrityError
from models.runtime.audio import decode_audio
from models.runtime.transcript import ModelRef
from tests.functions.batch_stack import BatchStack
from tests.functions.learning.loop_models import CANDIDATE_VERSION, candidate_dir, publish_stable

CANDIDATE = ModelRef(name="edgescribe-edge", version=CANDIDATE_VERSION)


@pytest.fixture
def published(batch_stack: BatchStack, tmp_path: Path) -> BatchStack:
    """Stable v1 and the candidate v2 published (signed) in the stack's models bucket."""
    signer = generate_signing_key(tmp_path / "keys" / "signing.pem")
    service = DistributionService(batch_stack.s3, batch_stack.names.models_bucket, signer=signer)
    publish_stable(service)
    service.publish(candidate_dir(tmp_path))
    return batch_stack


def _files(folder: Path) -> list[Path]:
    return sorted(path for path in folder.rglob("*") if path.is_file()) if folder.exists() else []


def _put(stack: BatchStack, key: str, body: bytes) -> None:
    stack.s3.put_object(Bucket=stack.names.models_bucket, Key=key, Body=body)


def _get(stack: BatchStack, key: str) -> bytes:
    return stack.s3.get_object(Bucket=stack.names.models_bucket, Key=key)["Body"].read()


def test_published_version_is_downloaded_verified_and_transcribes(
    published: BatchStack, tmp_path: Path, speech_sample: Sample
) -> None:
    work_dir = tmp_path / "models"
    model = load_published_model(
        published.s3, published.names.models_bucket, CANDIDATE, work_dir=work_dir, purpose="t"
    )

    assert model.model == CANDIDATE
    assert model.acoustic_model.manifest.version == CANDIDATE_VERSION
    assert model.folder.parent == work_dir
    assert model.folder.name.startswith("edgescribe-t-edgescribe-edge-v2-")
    assert {path.name for path in _files(work_dir)} == {"manifest.json", "model.onnx"}
    transcript = model.transcriber().transcribe(decode_audio(speech_sample.path), transcript_id="x")
    assert transcript.model == CANDIDATE
    assert transcript.text

    model.remove_files()
    assert _files(work_dir) == []
    # The session was built from the bytes in memory: removing the files does not stop it.
    assert model.transcriber().transcribe(decode_audio(speech_sample.path), transcript_id="y").text


def _flip_model_bytes(stack: BatchStack) -> None:
    key = storage_layout.model_key("edgescribe-edge", CANDIDATE_VERSION)
    good = _get(stack, key)
    _put(stack, key, good[:-16] + bytes(16))


def _truncate_model(stack: BatchStack) -> None:
    key = storage_layout.model_key("edgescribe-edge", CANDIDATE_VERSION)
    good = _get(stack, key)
    _put(stack, key, good[: len(good) // 2])


def _delete_model(stack: BatchStack) -> None:
    key = storage_layout.model_key("edgescribe-edge", CANDIDATE_VERSION)
    stack.s3.delete_object(Bucket=stack.names.models_bucket, Key=key)


def _manifest_of_v1_at_v2(stack: BatchStack) -> None:
    v1 = _get(stack, storage_layout.manifest_key("edgescribe-edge", 1))
    _put(stack, storage_layout.manifest_key("edgescribe-edge", CANDIDATE_VERSION), v1)


def _oversize_manifest(stack: BatchStack) -> None:
    key = storage_layout.manifest_key("edgescribe-edge", CANDIDATE_VERSION)
    _put(stack, key, b" " * (MAX_MANIFEST_BYTES + 1))


def _escaping_file_name(stack: BatchStack) -> None:
    key = storage_layout.manifest_key("edgescribe-edge", CANDIDATE_VERSION)
    manifest = json.loads(_get(stack, key))
    manifest["file"] = "../../escaped.onnx"
    _put(stack, key, json.dumps(manifest).encode())


def _not_a_manifest(stack: BatchStack) -> None:
    _put(stack, storage_layout.manifest_key("edgescribe-edge", CANDIDATE_VERSION), b"{nope")


@pytest.mark.parametrize(
    ("damage", "error", "reason"),
    [
        (_flip_model_bytes, ModelIntegrityError, "sha256 .* does not match"),
        (_truncate_model, PublishedModelError, "holds .* bytes, but its manifest says"),
        (_delete_model, PublishedModelError, "model.onnx is not in bucket"),
        (_manifest_of_v1_at_v2, PublishedModelError, "describes edgescribe-edge v1, not .* v2"),
        (_oversize_manifest, PublishedModelError, "is over 1048576 bytes"),
        (_escaping_file_name, PublishedModelError, "must be a plain file name"),
        (_not_a_manifest, PublishedModelError, "is not a valid manifest"),
    ],
    ids=["flipped", "truncated", "deleted", "wrong-manifest", "oversize", "escape", "garbage"],
)
def test_a_damaged_published_model_is_refused_and_leaves_no_files(
    published: BatchStack,
    tmp_path: Path,
    damage: Callable[[BatchStack], None],
    error: type[Exception],
    reason: str,
) -> None:
    damage(published)
    work_dir = tmp_path / "models"

    with pytest.raises(error, match=reason):
        load_published_model(
            published.s3, published.names.models_bucket, CANDIDATE, work_dir=work_dir
        )

    assert _files(work_dir) == []
    assert not (tmp_path / "escaped.onnx").exists()


def test_an_unpublished_version_is_named_in_the_error(
    published: BatchStack, tmp_path: Path
) -> None:
    missing = ModelRef(name="edgescribe-edge", version=9)
    work_dir = tmp_path / "models"
    with pytest.raises(
        PublishedModelError, match=re.escape("models/edgescribe-edge/9/manifest.json")
    ):
        load_published_model(
            published.s3, published.names.models_bucket, missing, work_dir=work_dir
        )
    assert _files(work_dir) == []
