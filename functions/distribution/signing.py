"""The key that signs manifests and rollback directives, and where it comes from.

One Ed25519 private key signs everything the distribution service hands to devices; devices pin its
public key (``key_id`` = sha256 of the raw public bytes, as ``models.runtime.manifest.key_id``).

Where the key lives:

- on one machine: a PKCS#8 PEM file (``EDGESCRIBE_SIGNING_KEY_FILE``, or ``--signing-key``);
- in the cloud: a Secrets Manager secret holding that PEM (``EDGESCRIBE_SIGNING_KEY_SECRET_ID``),
  read once per container; only the distribution function's role may read it.

Why not KMS: KMS can hold Ed25519 keys (``ECC_NIST_EDWARDS25519``), but the moto server every test
runs against cannot sign with them, so a KMS signer would ship untested. ``ManifestSigner`` is the
seam where one would go (see docs/decisions/0301-model-distribution.md).

Re-signing rule: any change to a manifest (a new ``expires_at``) invalidates every existing signature,
so signing drops signatures by other keys instead of carrying dead ones along.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
)

from functions.distribution.errors import SigningKeyError
from models.runtime.manifest import ModelManifest, key_id, sign_manifest, signature_by

if TYPE_CHECKING:
    from models.runtime.rollback_directive import RollbackDirective

SIGNING_KEY_FILE_VARIABLE = "EDGESCRIBE_SIGNING_KEY_FILE"
SIGNING_KEY_SECRET_VARIABLE = "EDGESCRIBE_SIGNING_KEY_SECRET_ID"  # noqa: S105 - a variable name


@dataclass(frozen=True)
class ManifestSigner:
    """Signs manifests and directives with one Ed25519 key."""

    private_key: Ed25519PrivateKey
    source: str = "<memory>"

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.private_key.public_key()

    @property
    def key_id(self) -> str:
        return key_id(self.public_key)

    def trusted_keys(self) -> dict[str, Ed25519PublicKey]:
        """This key as a device pins it: ``{key_id: public_key}``."""
        return {self.key_id: self.public_key}

    def sign_manifest(self, manifest: ModelManifest) -> ModelManifest:
        """``manifest`` signed by this key alone (signatures over other content are dropped)."""
        return sign_manifest(manifest.model_copy(update={"signatures": []}), self.private_key)

    def sign_directive(self, directive: RollbackDirective) -> RollbackDirective:
        signature = signature_by(self.private_key, directive.canonical_bytes())
        return directive.model_copy(update={"signatures": [signature]})

    def public_key_pem(self) -> bytes:
        return self.public_key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)


def load_private_key_pem(data: bytes, source: str) -> Ed25519PrivateKey:
    """Parse a PKCS#8 PEM Ed25519 private key; the error names ``source`` and what is wrong."""
    try:
        key = load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise SigningKeyError(f"{source}: not an unencrypted PEM private key ({exc})") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(
            f"{source}: a {type(key).__name__} key; manifests are signed with Ed25519 only"
        )
    return key


def signer_from_file(path: Path) -> ManifestSigner:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SigningKeyError(f"cannot read signing key {path}: {exc.strerror or exc}") from exc
    return ManifestSigner(load_private_key_pem(data, str(path)), source=str(path))


def signer_from_secret(secret_id: str, client: Any | None = None) -> ManifestSigner:
    """Read the PEM from a Secrets Manager secret (``SecretString``, or ``SecretBinary``)."""
    from botocore.exceptions import BotoCoreError, ClientError

    client = client or _secretsmanager_client()
    try:
        value = client.get_secret_value(SecretId=secret_id)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "error")
        raise SigningKeyError(f"cannot read signing key secret {secret_id!r}: {code}") from exc
    except BotoCoreError as exc:
        raise SigningKeyError(f"cannot read signing key secret {secret_id!r}: {exc}") from exc
    data = value.get("SecretBinary") or str(value.get("SecretString", "")).encode()
    return ManifestSigner(
        load_private_key_pem(data, f"secret {secret_id}"), source=f"secretsmanager:{secret_id}"
    )


def signer_from_environment() -> ManifestSigner | None:
    """The configured signer, or ``None`` where this process may not sign (read-only roles)."""
    path = os.environ.get(SIGNING_KEY_FILE_VARIABLE)
    if path:
        return signer_from_file(Path(path))
    secret_id = os.environ.get(SIGNING_KEY_SECRET_VARIABLE)
    if secret_id:
        return signer_from_secret(secret_id)
    return None


def generate_signing_key(private_path: Path, public_path: Path | None = None) -> ManifestSigner:
    """Create a new key pair; the private PEM is written owner-readable only. Refuses to overwrite."""
    if private_path.exists():
        raise SigningKeyError(f"{private_path} exists; refusing to overwrite a signing key")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    private_path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(pem)
    signer = ManifestSigner(key, source=str(private_path))
    if public_path is not None:
        public_path.write_bytes(signer.public_key_pem())
    return signer


def _secretsmanager_client() -> Any:
    """A Secrets Manager client aimed where every other client is (``AWS_ENDPOINT_URL`` locally).

    Created per call: the signer itself is loaded once per container, so this runs once.
    """
    import boto3

    from functions.common.aws_clients import endpoint_url, region_name

    return boto3.session.Session().client(
        "secretsmanager", endpoint_url=endpoint_url(), region_name=region_name()
    )
