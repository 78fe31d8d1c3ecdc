"""The model manifest: what a model file is, and proof of who released it.

One ``manifest.json`` sits beside each ``model.onnx``. The model bytes are bound to the manifest by
``sha256`` and ``size``; the manifest is bound to the releaser by Ed25519 signatures over its
*canonical form* (the JSON of every field except ``signatures``, keys sorted, no whitespace).

Rules a verifier applies, in this order (see ``edge/verification.py`` for the device side):

1. the manifest parses and its schema is valid;
2. at least ``threshold`` signatures verify with distinct *pinned* keys (unknown key ids are ignored);
3. ``expires_at`` is in the future (a frozen feed cannot pin a device to an old model forever);
4. ``version`` is greater than the installed one, unless a signed rollback directive says otherwise;
5. the downloaded bytes have exactly ``size`` bytes and hash to ``sha256``.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, Protocol, Self

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from pydantic import BaseModel, ConfigDict, Field

from models.runtime.vocabulary import DEFAULT_VOCABULARY

Quantization = Literal["fp32", "int8-dynamic", "int8-static"]


class SetMetrics(BaseModel):
    """Error rates on one evaluation set (fractions, not percent)."""

    n: int
    cer: float
    wer: float


class Signature(BaseModel):
    model_config = ConfigDict(frozen=True)

    keyid: str
    sig: str  # base64


class ModelManifest(BaseModel):
    """Everything a consumer needs to trust and run one model version."""

    name: str
    version: int = Field(ge=1)
    label: str = "0.1.0"
    file: str = "model.onnx"
    sha256: str
    size: int = Field(ge=1)
    vocabulary: list[str] = Field(default_factory=lambda: list(DEFAULT_VOCABULARY))
    sample_rate: int = 16_000
    frame_shift_seconds: float = 0.03
    quantization: Quantization = "fp32"
    architecture: str = ""
    parent_version: int | None = None
    training_data: dict[str, float | int | str] = Field(default_factory=dict)
    metrics: dict[str, SetMetrics] = Field(default_factory=dict)
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    expires_at: datetime | None = None
    min_agent_version: str = "0.1.0"
    signatures: list[Signature] = Field(default_factory=list)

    def canonical_bytes(self) -> bytes:
        """The bytes that signatures cover: every field but ``signatures``, canonically encoded."""
        return canonical_json(self)

    def to_json(self) -> str:
        return self.model_dump_json(indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str | bytes) -> ModelManifest:
        return cls.model_validate_json(text)

    @classmethod
    def load(cls, path: Path) -> ModelManifest:
        return cls.from_json(path.read_bytes())


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def key_id(public_key: Ed25519PublicKey) -> str:
    """A key's id: the sha256 of its raw public bytes (as TUF does), hex."""
    raw = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def canonical_json(document: BaseModel) -> bytes:
    """The signed form of a document: every field but ``signatures``, keys sorted, no whitespace.

    One rule for every signed document (manifests, rollback directives), so signers and verifiers
    can never disagree on the bytes.
    """
    payload = document.model_dump(mode="json", exclude={"signatures"})
    return json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()


class SignedDocument(Protocol):
    """Anything signed the manifest way: signatures over its ``canonical_bytes``."""

    @property
    def signatures(self) -> Sequence[Signature]: ...

    def canonical_bytes(self) -> bytes: ...


def signature_by(private_key: Ed25519PrivateKey, payload: bytes) -> Signature:
    """This key's Ed25519 signature over ``payload``, tagged with the key's id."""
    signature = base64.b64encode(private_key.sign(payload)).decode()
    return Signature(keyid=key_id(private_key.public_key()), sig=signature)


class SignedModel(BaseModel):
    """A pydantic document carrying Ed25519 signatures over its :func:`canonical_json` form
    (trust roots, rollback directives)."""

    signatures: list[Signature] = Field(default_factory=list)

    def canonical_bytes(self) -> bytes:
        return canonical_json(self)

    def signed_by(self, private_key: Ed25519PrivateKey) -> Self:
        """A copy with this key's signature added (replacing an older one by the same key)."""
        signature = signature_by(private_key, self.canonical_bytes())
        others = [s for s in self.signatures if s.keyid != signature.keyid]
        return self.model_copy(update={"signatures": [*others, signature]})


def sign_manifest(manifest: ModelManifest, private_key: Ed25519PrivateKey) -> ModelManifest:
    """A copy of ``manifest`` with this key's signature added (replacing an older one by it)."""
    signature = signature_by(private_key, manifest.canonical_bytes())
    others = [s for s in manifest.signatures if s.keyid != signature.keyid]
    return manifest.model_copy(update={"signatures": [*others, signature]})


def count_valid_signatures(
    document: SignedDocument, trusted_keys: dict[str, Ed25519PublicKey]
) -> int:
    """How many distinct trusted keys signed exactly this document (unknown keys count for nothing)."""
    payload = document.canonical_bytes()
    valid: set[str] = set()
    for signature in document.signatures:
        public_key = trusted_keys.get(signature.keyid)
        if public_key is None:
            continue
        try:
            public_key.verify(base64.b64decode(signature.sig, validate=True), payload)
        except (InvalidSignature, ValueError):
            continue
        valid.add(signature.keyid)
    return len(valid)
