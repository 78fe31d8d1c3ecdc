from __future__ import annotations

import stat
from pathlib import Path

import boto3
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from edgescribe.local.moto_server import MotoServer
from functions.distribution.errors import SigningKeyError
from functions.distribution.signing import (
    ManifestSigner,
    generate_signing_key,
    signer_from_environment,
    signer_from_file,
    signer_from_secret,
)
from models.runtime.manifest import ModelManifest, count_valid_signatures


def _manifest() -> ModelManifest:
    return ModelManifest(name="edgescribe-edge", version=3, sha256="ab" * 32, size=10)


def test_a_manifest_signed_from_a_key_file_verifies_with_its_public_key(tmp_path: Path) -> None:
    generate_signing_key(tmp_path / "key.pem")
    signer = signer_from_file(tmp_path / "key.pem")
    signed = signer.sign_manifest(_manifest())
    assert count_valid_signatures(signed, signer.trusted_keys()) == 1


def test_private_key_file_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    generate_signing_key(tmp_path / "key.pem", tmp_path / "key.pub.pem")
    mode = stat.S_IMODE((tmp_path / "key.pem").stat().st_mode)
    assert mode == 0o600
    assert b"PUBLIC KEY" in (tmp_path / "key.pub.pem").read_bytes()


def test_keygen_refuses_to_overwrite_an_existing_signing_key(tmp_path: Path) -> None:
    first = generate_signing_key(tmp_path / "key.pem")
    with pytest.raises(SigningKeyError, match="refusing to overwrite"):
        generate_signing_key(tmp_path / "key.pem")
    assert signer_from_file(tmp_path / "key.pem").key_id == first.key_id


def test_resigning_drops_signatures_that_no_longer_cover_the_content(tmp_path: Path) -> None:
    old = generate_signing_key(tmp_path / "old.pem")
    new = generate_signing_key(tmp_path / "new.pem")
    signed_by_old = old.sign_manifest(_manifest())
    changed = signed_by_old.model_copy(update={"label": "0.2.0"})
    resigned = new.sign_manifest(changed)
    assert [s.keyid for s in resigned.signatures] == [new.key_id]


def test_rejects_a_key_file_that_is_not_ed25519(tmp_path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path / "rsa.pem"
    path.write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    with pytest.raises(SigningKeyError, match="Ed25519 only"):
        signer_from_file(path)


def test_rejects_a_key_file_that_is_not_a_key(tmp_path: Path) -> None:
    path = tmp_path / "garbage.pem"
    path.write_text("not a key")
    with pytest.raises(SigningKeyError, match=r"garbage\.pem"):
        signer_from_file(path)


def test_missing_key_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(SigningKeyError, match=r"nowhere\.pem"):
        signer_from_file(tmp_path / "nowhere.pem")


def test_signing_key_is_read_from_secrets_manager(aws_env: MotoServer, tmp_path: Path) -> None:
    local = generate_signing_key(tmp_path / "key.pem")
    client = boto3.client("secretsmanager", endpoint_url=aws_env.endpoint_url)
    client.create_secret(
        Name="edgescribe/signing-key", SecretString=(tmp_path / "key.pem").read_text()
    )
    from_secret = signer_from_secret("edgescribe/signing-key")
    assert from_secret.key_id == local.key_id
    assert from_secret.source == "secretsmanager:edgescribe/signing-key"


def test_missing_secret_is_a_signing_key_error_not_a_crash(aws_env: MotoServer) -> None:
    with pytest.raises(SigningKeyError, match="ResourceNotFoundException"):
        signer_from_secret("edgescribe/no-such-secret")


def test_environment_selects_the_key_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    generated = generate_signing_key(tmp_path / "key.pem")
    monkeypatch.setenv("EDGESCRIBE_SIGNING_KEY_FILE", str(tmp_path / "key.pem"))
    signer = signer_from_environment()
    assert isinstance(signer, ManifestSigner)
    assert signer.key_id == generated.key_id


def test_no_configured_key_means_no_signer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EDGESCRIBE_SIGNING_KEY_FILE", raising=False)
    monkeypatch.delenv("EDGESCRIBE_SIGNING_KEY_SECRET_ID", raising=False)
    assert signer_from_environment() is None
