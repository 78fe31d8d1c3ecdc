"""The distribution operations: publish, promote, rollback, status, refresh, device decisions.

``DistributionService`` is what the CLI (``edgescribe model ...``), the distribution function
(``functions.model_distribution``) and the API's device and admin routes call. It holds no state
between calls: every call reads the channel pointers from the models bucket, so a promote or a
rollback is visible to the very next device request.

Freshness: manifests and rollback directives carry ``expires_at`` so a device can tell a frozen
feed from a quiet one. ``promote``/``rollback`` re-sign what they hand out when it expires within
``refresh_margin``; ``refresh`` (run daily by the distribution function) does the same for every
channel. Without a signing key the service can still promote fresh manifests, but never sign.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel

from functions.distribution.channels import (
    CHANNELS,
    Channel,
    ChannelChange,
    ChannelState,
    ChannelStore,
)
from functions.distribution.decision import DeviceDecision, decide
from functions.distribution.errors import (
    InvalidRolloutError,
    NothingToRollBackError,
    SigningKeyError,
)
from functions.distribution.model_store import ModelStore
from functions.distribution.publish import PublishedModel, publish_model_dir
from functions.distribution.signing import ManifestSigner
from models.runtime.artifacts import DEFAULT_MODEL_NAME
from models.runtime.manifest import ModelManifest, count_valid_signatures
from models.runtime.rollback_directive import RollbackDirective

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

DEFAULT_MANIFEST_TTL = timedelta(days=30)
DEFAULT_REFRESH_MARGIN = timedelta(days=7)
#: Rollout a channel gets when a promote names none.
DEFAULT_ROLLOUT_PERCENT: dict[Channel, float] = {"shadow": 100.0, "canary": 10.0, "stable": 100.0}


class ChannelStatus(BaseModel):
    channel: Channel
    state: ChannelState | None
    manifest_expires_at: datetime | None = None
    history: list[ChannelChange]


class DistributionStatus(BaseModel):
    bucket: str
    channels: list[ChannelStatus]
    published_versions: dict[str, list[int]]


def _utc_now() -> datetime:
    return datetime.now(UTC)


class DistributionService:
    def __init__(
        self,
        s3: S3Client,
        bucket: str,
        *,
        signer: ManifestSigner | None = None,
        clock: Callable[[], datetime] = _utc_now,
        manifest_ttl: timedelta = DEFAULT_MANIFEST_TTL,
        refresh_margin: timedelta = DEFAULT_REFRESH_MARGIN,
    ) -> None:
        if refresh_margin >= manifest_ttl:
            raise ValueError("refresh_margin must be shorter than manifest_ttl")
        self.models = ModelStore(s3, bucket)
        self.channels = ChannelStore(s3, bucket)
        self._signer = signer
        self._clock = clock
        self._ttl = manifest_ttl
        self._margin = refresh_margin

    # --- publishing -----------------------------------------------------------------------------

    def publish(self, model_dir: Path, *, version: int | None = None) -> PublishedModel:
        return publish_model_dir(
            self.models,
            model_dir,
            self._require_signer("publish"),
            now=self._clock(),
            manifest_ttl=self._ttl,
            version=version,
        )

    # --- channel changes ------------------------------------------------------------------------

    def promote(
        self,
        channel: Channel,
        version: int,
        *,
        actor: str,
        rollout_percent: float | None = None,
        name: str | None = None,
        reason: str = "",
    ) -> ChannelState:
        """Point ``channel`` at ``version`` (which must be published) with a rollout percentage."""
        percent = self._rollout_for(channel, rollout_percent)
        current = self.channels.read(channel)
        name = name or self._default_name(current.state if current else None)
        self._fresh_manifest(name, version)
        now = self._clock()
        old = current.state if current else None
        previous = (
            old.version
            if old and old.version != version
            else (old.previous_version if old else None)
        )
        state = ChannelState(
            channel=channel,
            name=name,
            version=version,
            rollout_percent=percent,
            previous_version=previous,
            updated_at=now,
            updated_by=actor,
            reason=reason,
            revision=old.revision + 1 if old else 1,
            rollback=self._carry_directive(old, name, version, now),
        )
        self.channels.write(
            state,
            self._change(state, "promote", old.version if old else None),
            expected_etag=current.etag if current else None,
        )
        return state

    def rollback(
        self,
        channel: Channel,
        *,
        actor: str,
        to_version: int | None = None,
        reason: str = "",
    ) -> list[ChannelState]:
        """Return ``channel`` to an older version and withdraw the newer ones, with a signed directive.

        Every other channel that serves a withdrawn version is rolled back too (a version bad on
        stable is bad on canary). Returns the new states, ``channel``'s first.
        """
        signer = self._require_signer("rollback")
        current = self.channels.read(channel)
        if current is None:
            raise NothingToRollBackError(f"channel {channel!r} has never been promoted")
        state = current.state
        target = to_version if to_version is not None else state.previous_version
        if target is None:
            raise NothingToRollBackError(
                f"channel {channel!r} serves version {state.version} and has no earlier version "
                "recorded; name one with --to-version"
            )
        if target >= state.version:
            raise InvalidRolloutError(
                f"rollback must go to an older version than {state.version}, not {target}; "
                "use promote to move forward"
            )
        self._fresh_manifest(state.name, target)
        now = self._clock()
        withdrawn = {
            v for v in self.models.published_versions(state.name) if target < v <= state.version
        }
        if state.rollback:
            withdrawn |= {v for v in state.rollback.revoked_versions if v > target}
        directive = signer.sign_directive(
            RollbackDirective(
                name=state.name,
                to_version=target,
                revoked_versions=sorted(withdrawn),
                issued_at=now,
                expires_at=now + self._ttl,
                reason=reason,
            )
        )
        results = [self._write_rollback(current.state, current.etag, directive, actor, reason)]
        for other in CHANNELS:
            if other == channel:
                continue
            found = self.channels.read(other)
            if found and found.state.name == state.name and found.state.version in withdrawn:
                cascade_reason = f"withdrawn with {channel} rollback: {reason}".rstrip(": ")
                results.append(
                    self._write_rollback(found.state, found.etag, directive, actor, cascade_reason)
                )
        return results

    def refresh(self, *, actor: str) -> list[str]:
        """Re-sign every served manifest and directive that expires within the margin."""
        signer = self._require_signer("refresh")
        refreshed: list[str] = []
        for channel in CHANNELS:
            current = self.channels.read(channel)
            if current is None:
                continue
            state = current.state
            manifest, etag = self.models.require_manifest(state.name, state.version)
            if self._needs_signing(manifest):
                self._resign_manifest(manifest, etag)
                refreshed.append(f"manifest {state.name} v{state.version}")
            directive = state.rollback
            if directive and directive.expires_at - self._clock() < self._margin:
                now = self._clock()
                renewed = signer.sign_directive(
                    directive.model_copy(update={"issued_at": now, "expires_at": now + self._ttl})
                )
                new_state = state.model_copy(
                    update={
                        "rollback": renewed,
                        "revision": state.revision + 1,
                        "updated_at": now,
                        "updated_by": actor,
                    }
                )
                self.channels.write(
                    new_state,
                    self._change(new_state, "refresh", state.version),
                    expected_etag=current.etag,
                )
                refreshed.append(f"rollback directive on {channel}")
        return refreshed

    # --- reading --------------------------------------------------------------------------------

    def channel_states(self) -> dict[Channel, ChannelState | None]:
        return self.channels.read_all()

    def status(self, history_limit: int = 10) -> DistributionStatus:
        statuses: list[ChannelStatus] = []
        names: set[str] = set()
        for channel in CHANNELS:
            current = self.channels.read(channel)
            expires_at = None
            if current is not None:
                names.add(current.state.name)
                found = self.models.read_manifest(current.state.name, current.state.version)
                expires_at = found[0].expires_at if found else None
            statuses.append(
                ChannelStatus(
                    channel=channel,
                    state=current.state if current else None,
                    manifest_expires_at=expires_at,
                    history=self.channels.history(channel, history_limit),
                )
            )
        names = names or {DEFAULT_MODEL_NAME}
        return DistributionStatus(
            bucket=self.models.bucket,
            channels=statuses,
            published_versions={
                name: self.models.published_versions(name) for name in sorted(names)
            },
        )

    def decide_for_device(
        self, device_id: str, installed: int | None, pinned: Channel | None = None
    ) -> tuple[DeviceDecision, ModelManifest | None]:
        """The decision for one device and the manifest of the version it should run."""
        states = self.channels.read_all()
        decision = decide(device_id, installed, states, pinned)
        if decision.version is None or decision.channel is None:
            return decision, None
        state = states.get(decision.channel)
        name = state.name if state else DEFAULT_MODEL_NAME
        found = self.models.read_manifest(name, decision.version)
        return decision, found[0] if found else None

    def manifest_name_for(self, channel: Channel) -> str | None:
        current = self.channels.read(channel)
        return current.state.name if current else None

    # --- internals ------------------------------------------------------------------------------

    def _write_rollback(
        self,
        old: ChannelState,
        etag: str,
        directive: RollbackDirective,
        actor: str,
        reason: str,
    ) -> ChannelState:
        now = self._clock()
        state = old.model_copy(
            update={
                "version": directive.to_version,
                "previous_version": self._version_before(old.channel, directive.to_version),
                "updated_at": now,
                "updated_by": actor,
                "reason": reason,
                "revision": old.revision + 1,
                "rollback": directive,
            }
        )
        self.channels.write(state, self._change(state, "rollback", old.version), expected_etag=etag)
        return state

    def _version_before(self, channel: Channel, version: int) -> int | None:
        """The newest version this channel served before ``version`` (the next rollback target)."""
        for change in self.channels.history(channel, limit=100):
            if change.to_version < version:
                return change.to_version
        return None

    def _carry_directive(
        self, old: ChannelState | None, name: str, version: int, now: datetime
    ) -> RollbackDirective | None:
        """A promote keeps withdrawn versions withdrawn: devices still on one need a way down."""
        directive = old.rollback if old else None
        if directive is None or directive.name != name:
            return None
        if directive.to_version == version:
            return directive
        still_withdrawn = sorted(v for v in directive.revoked_versions if v > version)
        if not still_withdrawn:
            return None
        signer = self._require_signer("re-issue the rollback directive for")
        return signer.sign_directive(
            directive.model_copy(
                update={
                    "to_version": version,
                    "revoked_versions": still_withdrawn,
                    "issued_at": now,
                    "expires_at": now + self._ttl,
                }
            )
        )

    def _fresh_manifest(self, name: str, version: int) -> ModelManifest:
        """The published manifest, re-signed first if it would expire within the margin."""
        manifest, etag = self.models.require_manifest(name, version)
        if not self._needs_signing(manifest):
            return manifest
        if self._signer is None:
            if manifest.expires_at is not None and manifest.expires_at <= self._clock():
                raise SigningKeyError(
                    f"the manifest of {name} v{version} expired at {manifest.expires_at:%Y-%m-%d}; "
                    "a signing key is needed to re-sign it"
                )
            return manifest
        return self._resign_manifest(manifest, etag)

    def _needs_signing(self, manifest: ModelManifest) -> bool:
        if manifest.expires_at is None or manifest.expires_at - self._clock() < self._margin:
            return True
        if self._signer is None:
            return False
        return count_valid_signatures(manifest, self._signer.trusted_keys()) == 0

    def _resign_manifest(self, manifest: ModelManifest, etag: str) -> ModelManifest:
        signer = self._require_signer("re-sign")
        renewed = signer.sign_manifest(
            manifest.model_copy(update={"expires_at": self._clock() + self._ttl})
        )
        self.models.write_manifest(renewed, expected_etag=etag)
        return renewed

    def _require_signer(self, what: str) -> ManifestSigner:
        if self._signer is None:
            raise SigningKeyError(
                f"no signing key configured to {what}; set EDGESCRIBE_SIGNING_KEY_FILE or "
                "EDGESCRIBE_SIGNING_KEY_SECRET_ID (or pass --signing-key)"
            )
        return self._signer

    def _default_name(self, current: ChannelState | None) -> str:
        if current is not None:
            return current.name
        stable = self.channels.read("stable")
        return stable.state.name if stable else DEFAULT_MODEL_NAME

    @staticmethod
    def _rollout_for(channel: Channel, requested: float | None) -> float:
        percent = DEFAULT_ROLLOUT_PERCENT[channel] if requested is None else requested
        if not 0.0 <= percent <= 100.0:
            raise InvalidRolloutError(f"rollout percentage must be within 0–100, not {percent}")
        if channel == "stable" and percent != 100.0:
            raise InvalidRolloutError(
                "stable always serves every device (100 %); stage a partial rollout on canary"
            )
        return percent

    def _change(self, state: ChannelState, action: str, from_version: int | None) -> ChannelChange:
        return ChannelChange.model_validate(
            {
                "channel": state.channel,
                "action": action,
                "name": state.name,
                "from_version": from_version,
                "to_version": state.version,
                "rollout_percent": state.rollout_percent,
                "actor": state.updated_by,
                "reason": state.reason,
                "at": state.updated_at,
                "revision": state.revision,
            }
        )


def service_from_environment() -> DistributionService:
    """The service for this process: ``MODELS_BUCKET`` via the shared client, the configured key.

    The signing key is loaded once per process (per Lambda container), not per request.
    """
    from functions.common.aws_clients import s3_client
    from functions.common.environment import resource_name

    return DistributionService(
        s3_client(), resource_name("MODELS_BUCKET"), signer=_environment_signer()
    )


def _environment_signer() -> ManifestSigner | None:
    import os

    from functions.distribution.signing import (
        SIGNING_KEY_FILE_VARIABLE,
        SIGNING_KEY_SECRET_VARIABLE,
        signer_from_environment,
    )

    source = (
        os.environ.get(SIGNING_KEY_FILE_VARIABLE),
        os.environ.get(SIGNING_KEY_SECRET_VARIABLE),
    )
    cached = _SIGNERS.get(source)
    if cached is None and source not in _SIGNERS:
        cached = signer_from_environment()
        _SIGNERS[source] = cached
    return cached


_SIGNERS: dict[tuple[str | None, str | None], ManifestSigner | None] = {}
