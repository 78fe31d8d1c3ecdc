"""Promote, rollback, refresh and status against the models bucket on the moto server."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from functions.distribution.channels import ChannelChange
from functions.distribution.errors import (
    ChannelConflictError,
    InvalidRolloutError,
    NothingToRollBackError,
    SigningKeyError,
    VersionNotPublishedError,
)
from functions.distribution.service import DEFAULT_MANIFEST_TTL, DistributionService
from functions.distribution.signing import ManifestSigner
from models.runtime import storage_layout
from models.runtime.manifest import count_valid_signatures
from tests.functions.batch_stack import BatchStack
from tests.functions.distribution.artifacts import make_model_dir
from tests.functions.distribution.conftest import Clock


def _publish(service: DistributionService, tmp_path: Path, *versions: int) -> None:
    for version in versions:
        service.publish(make_model_dir(tmp_path, version))


def test_promote_refuses_a_version_that_was_never_published(
    service: DistributionService,
) -> None:
    with pytest.raises(
        VersionNotPublishedError, match="version 9 of 'edgescribe-edge' is not published"
    ):
        service.promote("stable", 9, actor="ops")
    assert service.channels.read("stable") is None


def test_stable_always_serves_every_device(service: DistributionService, tmp_path: Path) -> None:
    _publish(service, tmp_path, 1)
    with pytest.raises(InvalidRolloutError, match="stage a partial rollout on canary"):
        service.promote("stable", 1, actor="ops", rollout_percent=50)


def test_every_channel_change_is_recorded_in_its_history(
    service: DistributionService, clock: Clock, tmp_path: Path
) -> None:
    _publish(service, tmp_path, 1, 2)
    service.promote("stable", 1, actor="alice", reason="first release")
    clock.now += timedelta(minutes=5)
    service.promote("stable", 2, actor="bob", reason="better CER")
    history = service.channels.history("stable")
    assert [(c.action, c.from_version, c.to_version, c.actor) for c in history] == [
        ("promote", 1, 2, "bob"),
        ("promote", None, 1, "alice"),
    ]
    assert history[0].reason == "better CER"
    state = service.channels.read("stable")
    assert state is not None
    assert (state.state.version, state.state.previous_version, state.state.revision) == (2, 1, 2)


def test_a_concurrent_change_is_refused_not_overwritten(
    service: DistributionService, batch_stack: BatchStack, clock: Clock, tmp_path: Path
) -> None:
    _publish(service, tmp_path, 1, 2)
    service.promote("canary", 1, actor="alice")
    seen = service.channels.read("canary")
    assert seen is not None
    service.promote("canary", 2, actor="bob")  # lands between our read and our write
    stale = seen.state.model_copy(
        update={"rollout_percent": 50.0, "revision": seen.state.revision + 1}
    )
    change = ChannelChange(
        channel="canary",
        action="promote",
        name=stale.name,
        from_version=1,
        to_version=1,
        rollout_percent=50.0,
        actor="alice",
        at=clock.now,
        revision=stale.revision,
    )
    with pytest.raises(ChannelConflictError, match="changed while"):
        service.channels.write(stale, change, expected_etag=seen.etag)
    current = service.channels.read("canary")
    assert current is not None
    assert current.state.version == 2


def test_rollback_signs_a_directive_that_withdraws_the_bad_version(
    service: DistributionService, signer: ManifestSigner, tmp_path: Path
) -> None:
    _publish(service, tmp_path, 3, 4)
    service.promote("stable", 3, actor="ops")
    service.promote("stable", 4, actor="ops")
    [state] = service.rollback("stable", actor="ops", reason="WER regression")
    assert state.version == 3
    assert state.rollback is not None
    assert state.rollback.revoked_versions == [4]
    assert state.rollback.to_version == 3
    assert count_valid_signatures(state.rollback, signer.trusted_keys()) == 1
    assert [c.action for c in service.channels.history("stable")][:1] == ["rollback"]


def test_a_tampered_directive_does_not_verify(
    service: DistributionService, signer: ManifestSigner, tmp_path: Path
) -> None:
    _publish(service, tmp_path, 3, 4)
    service.promote("stable", 3, actor="ops")
    service.promote("stable", 4, actor="ops")
    [state] = service.rollback("stable", actor="ops")
    assert state.rollback is not None
    widened = state.rollback.model_copy(update={"revoked_versions": [4, 5, 6]})
    assert count_valid_signatures(widened, signer.trusted_keys()) == 0


def test_rolling_back_stable_also_withdraws_the_version_from_canary(
    service: DistributionService, tmp_path: Path
) -> None:
    _publish(service, tmp_path, 3, 4)
    service.promote("stable", 3, actor="ops")
    service.promote("canary", 4, actor="ops", rollout_percent=10)
    service.promote("stable", 4, actor="ops")
    states = service.rollback("stable", actor="ops", reason="crash loop")
    assert [(s.channel, s.version) for s in states] == [("stable", 3), ("canary", 3)]
    canary = service.channels.read("canary")
    assert canary is not None
    assert canary.state.rollback is not None
    assert "withdrawn with stable rollback" in canary.state.reason


def test_rolling_back_twice_keeps_every_withdrawn_version_withdrawn(
    service: DistributionService, tmp_path: Path
) -> None:
    _publish(service, tmp_path, 2, 3, 4)
    for version in (2, 3, 4):
        service.promote("stable", version, actor="ops")
    service.rollback("stable", actor="ops")
    [state] = service.rollback("stable", actor="ops")
    assert state.version == 2
    assert state.rollback is not None
    assert state.rollback.revoked_versions == [3, 4]


def test_rollback_with_nothing_earlier_is_refused(
    service: DistributionService, tmp_path: Path
) -> None:
    _publish(service, tmp_path, 1)
    with pytest.raises(NothingToRollBackError, match="never been promoted"):
        service.rollback("stable", actor="ops")
    service.promote("stable", 1, actor="ops")
    with pytest.raises(NothingToRollBackError, match="no earlier version"):
        service.rollback("stable", actor="ops")


def test_rollback_cannot_be_used_to_move_forward(
    service: DistributionService, tmp_path: Path
) -> None:
    _publish(service, tmp_path, 1, 2)
    service.promote("stable", 1, actor="ops")
    with pytest.raises(InvalidRolloutError, match="use promote"):
        service.rollback("stable", actor="ops", to_version=2)


def test_rollback_needs_the_signing_key(
    service: DistributionService, batch_stack: BatchStack, tmp_path: Path
) -> None:
    _publish(service, tmp_path, 1, 2)
    service.promote("stable", 1, actor="ops")
    service.promote("stable", 2, actor="ops")
    unsigned = DistributionService(batch_stack.s3, batch_stack.names.models_bucket)
    with pytest.raises(SigningKeyError):
        unsigned.rollback("stable", actor="ops")


def test_promoting_past_a_withdrawn_version_keeps_devices_on_it_covered(
    service: DistributionService, signer: ManifestSigner, tmp_path: Path
) -> None:
    _publish(service, tmp_path, 3, 4, 5)
    service.promote("stable", 3, actor="ops")
    service.promote("stable", 5, actor="ops")
    service.rollback("stable", actor="ops", to_version=3)  # withdraws 4 and 5
    state = service.promote("stable", 4, actor="ops", reason="4 was fine after all")
    assert state.rollback is not None
    assert (state.rollback.to_version, state.rollback.revoked_versions) == (4, [5])
    assert count_valid_signatures(state.rollback, signer.trusted_keys()) == 1


def test_a_manifest_near_expiry_is_resigned_when_promoted(
    service: DistributionService, signer: ManifestSigner, clock: Clock, tmp_path: Path
) -> None:
    _publish(service, tmp_path, 1)
    clock.now += DEFAULT_MANIFEST_TTL - timedelta(days=2)
    service.promote("stable", 1, actor="ops")
    found = service.models.read_manifest("edgescribe-edge", 1)
    assert found is not None
    manifest = found[0]
    assert manifest.expires_at == clock.now + DEFAULT_MANIFEST_TTL
    assert count_valid_signatures(manifest, signer.trusted_keys()) == 1


def test_rejects_frozen_feed_promote_without_a_key_to_resign(
    service: DistributionService, batch_stack: BatchStack, clock: Clock, tmp_path: Path
) -> None:
    _publish(service, tmp_path, 1)
    clock.now += DEFAULT_MANIFEST_TTL + timedelta(days=1)
    unsigned = DistributionService(batch_stack.s3, batch_stack.names.models_bucket, clock=clock)
    with pytest.raises(SigningKeyError, match="expired"):
        unsigned.promote("stable", 1, actor="ops")


def test_refresh_resigns_served_manifests_and_directives_before_they_expire(
    service: DistributionService, signer: ManifestSigner, clock: Clock, tmp_path: Path
) -> None:
    _publish(service, tmp_path, 1, 2)
    service.promote("stable", 1, actor="ops")
    service.promote("stable", 2, actor="ops")
    service.rollback("stable", actor="ops")
    assert service.refresh(actor="cron") == []  # nothing close to expiry yet
    clock.now += DEFAULT_MANIFEST_TTL - timedelta(days=3)
    refreshed = service.refresh(actor="cron")
    assert refreshed == ["manifest edgescribe-edge v1", "rollback directive on stable"]
    state = service.channels.read("stable")
    assert state is not None
    assert state.state.rollback is not None
    assert state.state.rollback.expires_at == clock.now + DEFAULT_MANIFEST_TTL
    assert count_valid_signatures(state.state.rollback, signer.trusted_keys()) == 1
    found = service.models.read_manifest("edgescribe-edge", 1)
    assert found is not None
    assert found[0].expires_at == clock.now + DEFAULT_MANIFEST_TTL


def test_status_reports_channels_expiry_history_and_published_versions(
    service: DistributionService, clock: Clock, tmp_path: Path
) -> None:
    _publish(service, tmp_path, 1, 2)
    service.promote("stable", 1, actor="ops")
    service.promote("canary", 2, actor="ops", rollout_percent=5)
    status = service.status()
    by_channel = {entry.channel: entry for entry in status.channels}
    assert by_channel["shadow"].state is None
    assert by_channel["canary"].state is not None
    assert by_channel["canary"].state.rollout_percent == 5
    assert by_channel["stable"].manifest_expires_at == clock.now + DEFAULT_MANIFEST_TTL
    assert status.published_versions == {"edgescribe-edge": [1, 2]}
    assert len(by_channel["stable"].history) == 1


def test_channel_objects_live_only_under_the_layout_keys(
    service: DistributionService, batch_stack: BatchStack, tmp_path: Path
) -> None:
    _publish(service, tmp_path, 1)
    service.promote("stable", 1, actor="ops")
    listing = batch_stack.s3.list_objects_v2(Bucket=batch_stack.names.models_bucket)
    keys = sorted(item["Key"] for item in listing.get("Contents", []))
    assert storage_layout.channel_key("stable") in keys
    assert storage_layout.model_key("edgescribe-edge", 1) in keys
    assert storage_layout.manifest_key("edgescribe-edge", 1) in keys
    history = [k for k in keys if k.startswith("models/channels/history/stable/")]
    assert len(history) == 1
    assert len(keys) == 4
