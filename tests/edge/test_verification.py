"""The verification checks one by one, each against the attack it names (no network, fake time)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge.errors import (
    BadSignatureError,
    ExpiredManifestError,
    HashMismatchError,
    IncompatibleModelError,
    LengthMismatchError,
    MalformedManifestError,
    RollbackAttackError,
    ThresholdNotMetError,
    UnknownKeyError,
    WrongModelError,
)
from edge.trust import TrustRoot
from edge.verification import (
    VerificationContext,
    accept_trust_root,
    verify_artifact,
    verify_manifest,
)
from models.runtime.manifest import ModelManifest, sign_manifest
from models.runtime.rollback_directive import RollbackDirective

NOW = datetime(2026, 6, 1, tzinfo=UTC)
DATA = b"model bytes " * 100


@pytest.fixture(scope="module")
def keys() -> list[Ed25519PrivateKey]:
    return [Ed25519PrivateKey.generate() for _ in range(3)]


def trust(keys: list[Ed25519PrivateKey], threshold: int = 1) -> TrustRoot:
    return TrustRoot.for_keys([k.public_key() for k in keys], version=0, threshold=threshold)


def context(root: TrustRoot, *, highest: int = 3, installed: int | None = 3) -> VerificationContext:
    return VerificationContext(
        trust=root,
        expected_name="edgescribe-edge",
        now=NOW,
        highest_version=highest,
        installed_version=installed,
        max_model_bytes=10_000,
        agent_version="0.1.0",
    )


def manifest(*signers: Ed25519PrivateKey, version: int = 4, **fields: object) -> ModelManifest:
    values: dict[str, object] = {
        "name": "edgescribe-edge",
        "version": version,
        "sha256": hashlib.sha256(DATA).hexdigest(),
        "size": len(DATA),
        "expires_at": NOW + timedelta(days=1),
        **fields,
    }
    result = ModelManifest(**values)  # type: ignore[arg-type]
    for key in signers:
        result = sign_manifest(result, key)
    return result


def test_accepts_genuine_newer_manifest(keys: list[Ed25519PrivateKey]) -> None:
    raw = manifest(keys[0]).model_dump(mode="json")
    assert verify_manifest(raw, context(trust(keys[:1]))).version == 4


def test_rejects_manifest_altered_after_signing(keys: list[Ed25519PrivateKey]) -> None:
    raw = manifest(keys[0]).model_dump(mode="json") | {"size": 9}
    with pytest.raises(BadSignatureError):
        verify_manifest(raw, context(trust(keys[:1])))


def test_rejects_signature_by_untrusted_key(keys: list[Ed25519PrivateKey]) -> None:
    with pytest.raises(UnknownKeyError):
        verify_manifest(manifest(keys[2]).model_dump(mode="json"), context(trust(keys[:2])))


def test_threshold_needs_distinct_trusted_keys(keys: list[Ed25519PrivateKey]) -> None:
    root = trust(keys, threshold=2)
    one = manifest(keys[0]).model_dump(mode="json")
    doubled = one | {"signatures": one["signatures"] * 2}  # the same key twice is still one key
    for raw in (one, doubled):
        with pytest.raises(ThresholdNotMetError):
            verify_manifest(raw, context(root))
    assert verify_manifest(manifest(keys[0], keys[1]).model_dump(mode="json"), context(root))


def test_rejects_wrong_model_name(keys: list[Ed25519PrivateKey]) -> None:
    with pytest.raises(WrongModelError):
        verify_manifest(
            manifest(keys[0], name="edgescribe-cloud").model_dump(mode="json"),
            context(trust(keys[:1])),
        )


@pytest.mark.parametrize("expires_at", [NOW, NOW - timedelta(seconds=1), None])
def test_rejects_frozen_feed(keys: list[Ed25519PrivateKey], expires_at: datetime | None) -> None:
    raw = manifest(keys[0], expires_at=expires_at).model_dump(mode="json")
    with pytest.raises(ExpiredManifestError):
        verify_manifest(raw, context(trust(keys[:1])))


@pytest.mark.parametrize("version", [1, 3])
def test_rejects_rollback_attack(keys: list[Ed25519PrivateKey], version: int) -> None:
    raw = manifest(keys[0], version=version).model_dump(mode="json")
    with pytest.raises(RollbackAttackError):
        verify_manifest(raw, context(trust(keys[:1]), highest=3, installed=3))


def directive(key: Ed25519PrivateKey, **fields: object) -> RollbackDirective:
    values: dict[str, object] = {
        "name": "edgescribe-edge",
        "to_version": 2,
        "revoked_versions": [3],
        "issued_at": NOW - timedelta(hours=1),
        "expires_at": NOW + timedelta(days=1),
        **fields,
    }
    return RollbackDirective(**values).signed_by(key)  # type: ignore[arg-type]


def test_signed_rollback_directive_permits_exact_downgrade(keys: list[Ed25519PrivateKey]) -> None:
    raw = manifest(keys[0], version=2).model_dump(mode="json")
    assert verify_manifest(raw, context(trust(keys[:1])), directive(keys[0])).version == 2


@pytest.mark.parametrize(
    "fields",
    [
        {"to_version": 1},  # another target than offered
        {"revoked_versions": [5]},  # replayed: does not withdraw what the device runs
        {"expires_at": NOW - timedelta(seconds=1)},  # stale directive
        {"name": "edgescribe-cloud"},
    ],
)
def test_rejects_mismatched_rollback_directive(
    keys: list[Ed25519PrivateKey], fields: dict[str, object]
) -> None:
    raw = manifest(keys[0], version=2).model_dump(mode="json")
    with pytest.raises((RollbackAttackError, ExpiredManifestError)):
        verify_manifest(raw, context(trust(keys[:1])), directive(keys[0], **fields))


def test_rejects_rollback_directive_by_untrusted_key(keys: list[Ed25519PrivateKey]) -> None:
    raw = manifest(keys[0], version=2).model_dump(mode="json")
    with pytest.raises(UnknownKeyError):
        verify_manifest(raw, context(trust(keys[:1])), directive(keys[1]))


def test_rejects_oversize_and_too_new_models_before_download(keys: list[Ed25519PrivateKey]) -> None:
    with pytest.raises(IncompatibleModelError, match="cap"):
        verify_manifest(
            manifest(keys[0], size=20_000).model_dump(mode="json"), context(trust(keys[:1]))
        )
    with pytest.raises(IncompatibleModelError, match="agent"):
        verify_manifest(
            manifest(keys[0], min_agent_version="0.10.0").model_dump(mode="json"),
            context(trust(keys[:1])),
        )


@pytest.mark.parametrize(
    "raw", [b"", b"{", b"[]", b'{"name": "x"}', b'{"version": -1}', {"sha256": None}]
)
def test_rejects_hostile_manifest_json(keys: list[Ed25519PrivateKey], raw: object) -> None:
    with pytest.raises(MalformedManifestError):
        verify_manifest(raw, context(trust(keys[:1])))  # type: ignore[arg-type]


def test_artifact_length_then_hash(tmp_path: Path, keys: list[Ed25519PrivateKey]) -> None:
    signed = manifest(keys[0])
    path = tmp_path / "model.onnx"
    path.write_bytes(DATA)
    verify_artifact(path, signed)
    path.write_bytes(DATA[:-1])
    with pytest.raises(LengthMismatchError):
        verify_artifact(path, signed)
    path.write_bytes(DATA[:-1] + b"X")
    with pytest.raises(HashMismatchError):
        verify_artifact(path, signed)


def test_trust_root_rotation_rules(keys: list[Ed25519PrivateKey]) -> None:
    old = trust(keys[:1])
    new_keys = [keys[1], keys[2]]
    candidate = TrustRoot.for_keys([k.public_key() for k in new_keys], version=1, threshold=2)
    both = candidate.signed_by(keys[0]).signed_by(keys[1]).signed_by(keys[2])
    assert accept_trust_root(old, both).version == 1
    with pytest.raises(UnknownKeyError):  # the new owners alone cannot take over
        accept_trust_root(old, candidate.signed_by(keys[1]).signed_by(keys[2]))
    with pytest.raises(ThresholdNotMetError):  # the new root needs its own threshold (2)
        accept_trust_root(old, candidate.signed_by(keys[0]).signed_by(keys[1]))
    skipped = TrustRoot.for_keys([keys[1].public_key()], version=2, threshold=1)
    with pytest.raises(RollbackAttackError):  # versions go up one step at a time
        accept_trust_root(old, skipped.signed_by(keys[0]).signed_by(keys[1]))
