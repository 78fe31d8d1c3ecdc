"""What an update must pass before it may touch a slot: an ordered list of checks.

Each check names the attack it stops (after TUF's threat model). They run in this order, and the
first failure rejects the update with a specific ``UpdateRejectedError`` subclass; the installed model is
never touched before all of them pass.

On the manifest (before a single model byte is downloaded):

1. ``check_schema``          — hostile or corrupt metadata: the manifest must parse (pydantic).
2. ``check_signatures``      — tampering and forgery: at least ``threshold`` signatures by distinct
                               *pinned* keys verify over the canonical bytes. Nothing in the
                               manifest is trusted before this passes. Unknown key ids count for
                               nothing (``UnknownKeyError`` when no trusted key signed at all).
3. ``check_model_name``      — mix-and-match: a validly signed manifest for another model (say the
                               fp32 cloud model) is refused.
4. ``check_not_expired``     — freeze: an attacker replaying yesterday's metadata would keep the
                               device on a model with known faults; an expired (or, when required,
                               expiry-less) manifest is refused.
5. ``check_version``         — rollback: the version must exceed the highest version this device has
                               ever committed, unless a rollback directive — itself signed, unexpired,
                               withdrawing the installed version, returning to exactly this version —
                               orders it. (A replayed directive cannot move a device that has since
                               moved on: its version is not among the withdrawn ones.)
6. ``check_compatible``      — bricking and endless data up front: the manifest's ``size`` is within
                               the device's hard cap and the agent is new enough for the model.

On the downloaded bytes (after the size-capped download):

7. ``check_length``          — wrong length / truncation: exactly ``size`` bytes.
8. ``check_sha256``          — arbitrary software: the bytes hash to the signed ``sha256``.

Example::

    manifest = verify_manifest(raw, context)          # steps 1-6, before downloading
    download(url, part_file, max_bytes=manifest.size)  # the cap enforces step 6 on the wire
    verify_artifact(part_file, manifest)                # steps 7-8
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from pydantic import ValidationError

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
from models.runtime.manifest import ModelManifest, Signature, count_valid_signatures
from models.runtime.rollback_directive import RollbackDirective


class _Signed(Protocol):
    signatures: list[Signature]

    def canonical_bytes(self) -> bytes: ...


@dataclass(frozen=True)
class VerificationContext:
    """What the device knows when it judges an offer."""

    trust: TrustRoot
    expected_name: str
    now: datetime
    highest_version: int  # the anti-rollback floor: highest version ever committed (0 = none)
    installed_version: int | None
    max_model_bytes: int
    agent_version: str
    require_expiry: bool = True


# --- 1 ------------------------------------------------------------------------------------------
def check_schema(raw: str | bytes | dict[str, object]) -> ModelManifest:
    """Stops hostile or corrupt metadata: anything that is not a valid manifest is refused."""
    try:
        if isinstance(raw, dict):
            return ModelManifest.model_validate(raw)
        return ModelManifest.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ())) or "manifest"
        raise MalformedManifestError(
            f"manifest does not parse: {where}: {first.get('msg', 'invalid')}"
        ) from exc


# --- 2 ------------------------------------------------------------------------------------------
def check_signatures(document: _Signed, trust: TrustRoot, what: str = "manifest") -> None:
    """Stops tampering and forgery: ``trust.threshold`` distinct pinned keys must have signed."""
    keys = trust.public_keys()
    if not document.signatures:
        raise BadSignatureError(f"{what} is unsigned")
    known = {signature.keyid for signature in document.signatures} & set(keys)
    if not known:
        ids = ", ".join(sorted(s.keyid[:12] for s in document.signatures))
        raise UnknownKeyError(f"{what} is signed only by keys this device does not trust ({ids})")
    valid = count_valid_signatures(document, keys)
    if valid < trust.threshold and valid < len(known):
        raise BadSignatureError(
            f"{what} has {len(known) - valid} invalid signature(s) by trusted keys "
            "(the signed content was altered or the signature forged)"
        )
    if valid < trust.threshold:
        raise ThresholdNotMetError(
            f"{what} has {valid} valid signature(s), the trust root requires {trust.threshold}"
        )


# --- 3 ------------------------------------------------------------------------------------------
def check_model_name(manifest: ModelManifest, expected_name: str) -> None:
    """Stops mix-and-match: a genuine manifest of another model is not an update of this one."""
    if manifest.name != expected_name:
        raise WrongModelError(
            f"manifest is for model {manifest.name!r}, this device runs {expected_name!r}"
        )


# --- 4 ------------------------------------------------------------------------------------------
def check_not_expired(
    expires_at: datetime | None, now: datetime, *, require: bool, what: str = "manifest"
) -> None:
    """Stops freeze attacks: stale metadata cannot pin the device to an old model forever."""
    if expires_at is None:
        if require:
            raise ExpiredManifestError(f"{what} carries no expiry; this device requires one")
        return
    if expires_at <= now:
        raise ExpiredManifestError(
            f"{what} expired at {expires_at.isoformat()} (device time {now.isoformat()})"
        )


# --- 5 ------------------------------------------------------------------------------------------
def check_version(
    manifest: ModelManifest, context: VerificationContext, directive: RollbackDirective | None
) -> None:
    """Stops rollback attacks: only a signed, unexpired, exactly-matching directive goes back."""
    if manifest.version > context.highest_version:
        return
    if directive is None:
        raise RollbackAttackError(
            f"version {manifest.version} is not newer than {context.highest_version}, the highest "
            "version this device has installed, and no signed rollback directive orders it"
        )
    check_rollback_directive(directive, manifest, context)


def check_rollback_directive(
    directive: RollbackDirective, manifest: ModelManifest, context: VerificationContext
) -> None:
    """A directive is honoured only if it is genuine, fresh, and names this exact transition."""
    check_signatures(directive, context.trust, what="rollback directive")
    check_not_expired(directive.expires_at, context.now, require=True, what="rollback directive")
    problems = []
    if directive.name != manifest.name:
        problems.append(f"it is for model {directive.name!r}")
    if context.installed_version not in directive.revoked_versions:
        problems.append(
            f"it withdraws {directive.revoked_versions}, the device runs "
            f"v{context.installed_version}"
        )
    if directive.to_version != manifest.version:
        problems.append(f"it returns to v{directive.to_version}, the offer is v{manifest.version}")
    if problems:
        raise RollbackAttackError("rollback directive does not match: " + "; ".join(problems))


# --- 6 ------------------------------------------------------------------------------------------
def check_compatible(manifest: ModelManifest, context: VerificationContext) -> None:
    """Stops bricking and oversize artifacts before any download starts."""
    if manifest.size > context.max_model_bytes:
        raise IncompatibleModelError(
            f"model is {manifest.size} bytes, over this device's cap of {context.max_model_bytes}"
        )
    if _version_tuple(manifest.min_agent_version) > _version_tuple(context.agent_version):
        raise IncompatibleModelError(
            f"model needs agent {manifest.min_agent_version}, this is agent {context.agent_version}"
        )


def _version_tuple(label: str) -> tuple[int, ...]:
    parts = []
    for part in label.split("."):
        digits = "".join(ch for ch in part if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


def verify_manifest(
    raw: str | bytes | dict[str, object],
    context: VerificationContext,
    directive: RollbackDirective | None = None,
) -> ModelManifest:
    """Checks 1–6, in order. Returns the manifest only if every check passed."""
    manifest = check_schema(raw)
    check_signatures(manifest, context.trust)
    check_model_name(manifest, context.expected_name)
    check_not_expired(manifest.expires_at, context.now, require=context.require_expiry)
    check_version(manifest, context, directive)
    check_compatible(manifest, context)
    return manifest


# --- 7 ------------------------------------------------------------------------------------------
def check_length(path: Path, manifest: ModelManifest) -> None:
    """Stops wrong-length and truncated artifacts."""
    size = path.stat().st_size
    if size != manifest.size:
        raise LengthMismatchError(
            f"downloaded {size} bytes, the signed manifest says {manifest.size}"
        )


# --- 8 ------------------------------------------------------------------------------------------
def check_sha256(path: Path, manifest: ModelManifest) -> None:
    """Stops tampered bytes: the artifact must hash to the signed digest."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    actual = digest.hexdigest()
    if actual != manifest.sha256:
        raise HashMismatchError(
            f"model bytes hash to {actual[:16]}…, the signed manifest says {manifest.sha256[:16]}…"
        )


def verify_artifact(path: Path, manifest: ModelManifest) -> None:
    """Checks 7–8: length first (cheap, and a wrong length can never hash right)."""
    check_length(path, manifest)
    check_sha256(path, manifest)


def accept_trust_root(current: TrustRoot, candidate: TrustRoot) -> TrustRoot:
    """Key rotation: the next root must be signed by a threshold of the old keys and of its own.

    Stops a stolen key from installing its own root (the other holders must agree) and an old root
    from being replayed (versions only go up, one step at a time as in TUF).
    """
    if candidate.version != current.version + 1:
        raise RollbackAttackError(
            f"trust root v{candidate.version} does not follow the installed v{current.version}"
        )
    check_signatures(candidate, current, what=f"trust root v{candidate.version} (old keys)")
    check_signatures(candidate, candidate, what=f"trust root v{candidate.version} (new keys)")
    return candidate
