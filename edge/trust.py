"""Signed documents besides the manifest: the device's trust root and rollback directives.

Both are signed exactly like ``ModelManifest`` (Ed25519 over the canonical JSON of every field but
``signatures``; key id = sha256 of the raw public key), so one releaser key set signs all three.

**Trust root and key rotation** (after TUF's root metadata). A device starts from the keys pinned in
its config (trust root version 0). A ``TrustRoot`` of version N+1 replaces the current one only if
it is signed by a threshold of the *current* keys (the old owners agree) **and** a threshold of its
*own* keys (the new owners hold their private keys). Versions only go up, so a stolen old root
cannot be replayed. A compromised key is revoked by a rotation that leaves it out.

**Rollback directive.** Anti-rollback forbids installing a version lower than the highest one
ever installed. A bad release is withdrawn with a ``RollbackDirective`` — signed, naming the
withdrawn versions and the one version to return to, with an expiry — so going back is a decision
of the key holders, never of whoever controls the network or the distribution server. The target
manifest is verified as usual, so the directive plus the manifest pin the exact bytes.
"""

from __future__ import annotations

from typing import Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import Field, ValidationError

from edge.config import encode_public_key, parse_public_keys
from edge.errors import ConfigError, MalformedManifestError
from models.runtime.manifest import SignedModel
from models.runtime.rollback_directive import RollbackDirective


class TrustRoot(SignedModel):
    """The set of keys a device trusts and how many must sign (see module docstring)."""

    type: Literal["edgescribe-trust-root"] = "edgescribe-trust-root"
    version: int = Field(ge=0)
    threshold: int = Field(ge=1)
    keys: list[str]  # base64 raw Ed25519 public keys

    def public_keys(self) -> dict[str, Ed25519PublicKey]:
        try:
            return parse_public_keys(self.keys)
        except ConfigError as exc:
            raise MalformedManifestError(f"trust root v{self.version}: {exc}") from exc

    @classmethod
    def pinned(cls, keys: tuple[str, ...] | list[str], threshold: int) -> TrustRoot:
        """Version 0: the keys provisioning pinned in the config (trusted by installation)."""
        return cls(version=0, threshold=threshold, keys=list(keys))

    @classmethod
    def for_keys(
        cls, public_keys: list[Ed25519PublicKey], *, version: int, threshold: int
    ) -> TrustRoot:
        return cls(
            version=version, threshold=threshold, keys=[encode_public_key(k) for k in public_keys]
        )


def parse_trust_root(raw: str | bytes | dict[str, object]) -> TrustRoot:
    try:
        if isinstance(raw, dict):
            return TrustRoot.model_validate(raw)
        return TrustRoot.model_validate_json(raw)
    except ValidationError as exc:
        raise MalformedManifestError(f"trust root does not parse: {_first_error(exc)}") from exc


def parse_rollback_directive(raw: str | bytes | dict[str, object]) -> RollbackDirective:
    try:
        if isinstance(raw, dict):
            return RollbackDirective.model_validate(raw)
        return RollbackDirective.model_validate_json(raw)
    except ValidationError as exc:
        raise MalformedManifestError(
            f"rollback directive does not parse: {_first_error(exc)}"
        ) from exc


def _first_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first.get("loc", ())) or "document"
    return f"{where}: {first.get('msg', 'invalid')}"
