"""The good paths and the recoverable failures of an update: install, resume, revert, roll back,
rotate keys — each through real agent cycles against the fake device API."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge.agent import Agent
from edge.clock import FakeClock
from edge.config import AgentConfig
from edge.errors import HealthCheckFailedError, LinkError, RollbackAttackError
from edge.slots import Slots
from edge.trust import TrustRoot
from models.runtime.rollback_directive import RollbackDirective
from tests.edge.conftest import Releases
from tests.edge.fake_device_api import BlobFault, FakeDeviceApi, Offer
from tests.edge.model_factory import synthetic_model


def active_version(agent: Agent) -> int:
    slots = Slots(agent.config.slots_dir)
    active = slots.active()
    assert active is not None
    return slots.validate(active).version


def directive(
    clock: FakeClock, key: Ed25519PrivateKey, *, revoked: list[int], to: int, **extra: object
) -> dict[str, object]:
    signed = RollbackDirective(
        name="edgescribe-edge",
        to_version=to,
        revoked_versions=revoked,
        issued_at=clock.now(),
        expires_at=extra.pop("expires_at", clock.now() + timedelta(days=7)),  # type: ignore[arg-type]
        reason="v2 regressed",
    ).signed_by(key)
    return signed.model_dump(mode="json")


def test_installs_signed_update_into_inactive_slot_and_keeps_previous(
    agent: Agent, api: FakeDeviceApi, releases: Releases
) -> None:
    v2 = releases.make(2)
    api.offer(v2.offer())
    result = agent.sync_once()
    assert result.update is not None
    assert result.update.outcome is not None
    assert result.update.outcome.result == "installed"
    assert result.update.fetched_bytes == v2.manifest.size
    slots = Slots(agent.config.slots_dir)
    assert slots.active() == "b"
    assert slots.validate("b").sha256 == v2.manifest.sha256
    assert slots.validate("a").version == 1  # the previous model stays, ready for a revert
    assert agent.updater.store.load().highest_version == 2
    api.offer(Offer(action="none"))
    agent.sync_once()
    assert api.heartbeats[-1]["version"] == 2
    assert api.heartbeats[-1]["health"] == "ok"
    assert api.model_queries[-1] == "2"


def test_resumes_download_from_offset_after_connection_cut(
    agent: Agent, api: FakeDeviceApi, releases: Releases
) -> None:
    v2 = releases.make(2)
    api.offer(v2.offer())
    api.blob_fault = BlobFault.CUT_ONCE
    api.cut_after = v2.manifest.size // 3
    assert agent.run_cycle() > 0  # a transient failure: back off
    part = agent.config.downloads_dir / f"{v2.manifest.sha256}.part"
    assert part.stat().st_size == api.cut_after  # the partial survived
    result = agent.sync_once()
    assert result.update is not None
    assert result.update.outcome is not None
    assert result.update.outcome.result == "installed"
    assert api.blob_requests == [None, f"bytes={api.cut_after}-"]
    assert result.update.fetched_bytes == v2.manifest.size - api.cut_after
    assert active_version(agent) == 2


def test_restarts_download_when_server_ignores_range(
    agent: Agent, api: FakeDeviceApi, releases: Releases
) -> None:
    v2 = releases.make(2)
    api.offer(v2.offer())
    api.blob_fault = BlobFault.CUT_ONCE
    api.cut_after = 5000
    agent.run_cycle()
    api.blob_fault = BlobFault.IGNORE_RANGE
    result = agent.sync_once()
    assert result.update is not None
    assert result.update.outcome is not None
    assert result.update.outcome.result == "installed"  # a 200 restarts the file; no garbage
    assert active_version(agent) == 2


def test_stalled_download_times_out_and_keeps_partial(
    config: AgentConfig, clock: FakeClock, api: FakeDeviceApi, releases: Releases
) -> None:
    agent = Agent(replace(config, read_timeout_seconds=0.5), clock=clock)
    v2 = releases.make(2)
    api.offer(v2.offer())
    api.blob_fault = BlobFault.STALL
    with pytest.raises(LinkError):
        agent.sync_once()
    assert (agent.config.downloads_dir / f"{v2.manifest.sha256}.part").stat().st_size == 1024
    assert active_version(agent) == 1


def test_smoke_test_rejects_broken_model_and_blocks_it(
    agent: Agent, api: FakeDeviceApi, releases: Releases
) -> None:
    broken = releases.make(2, synthetic_model(favoured_symbol=0))  # signed, loads, hears nothing
    api.offer(broken.offer())
    result = agent.sync_once()
    assert result.update is not None
    assert result.update.outcome is not None
    assert result.update.outcome.result == "rejected"
    assert "empty text" in result.update.outcome.reason
    assert active_version(agent) == 1
    requests = len(api.blob_requests)
    agent.sync_once()  # offered again: not downloaded again
    assert len(api.blob_requests) == requests
    assert broken.manifest.sha256 in agent.updater.store.load().blocked_artifacts


def test_smoke_test_rejects_model_onnxruntime_cannot_load(
    agent: Agent, api: FakeDeviceApi, releases: Releases
) -> None:
    garbage = releases.make(2, b"\x08\x07" + b"not an onnx graph" * 100)
    api.offer(garbage.offer())
    outcome = agent.sync_once().update.outcome  # type: ignore[union-attr]
    assert outcome is not None
    assert outcome.result == "rejected"
    assert active_version(agent) == 1


def test_failed_health_check_after_switch_reverts_to_previous_slot(
    config: AgentConfig, clock: FakeClock, api: FakeDeviceApi, releases: Releases
) -> None:
    def failing_health(model_dir: object) -> None:
        raise RuntimeError("first live inference crashed")

    agent = Agent(config, clock=clock, health_check=failing_health)
    v2 = releases.make(2)
    api.offer(v2.offer())
    outcome = agent.sync_once().update.outcome  # type: ignore[union-attr]
    assert outcome is not None
    assert outcome.result == "reverted"
    assert outcome.attack == HealthCheckFailedError.attack
    assert Slots(config.slots_dir).active() == "a"
    assert active_version(agent) == 1
    assert (
        agent.updater.store.load().highest_version == 1
    )  # a reverted version does not raise the floor
    agent.sync_once()
    assert "reverted" in api.heartbeats[-1]["last_error"]


def test_signed_rollback_directive_returns_to_previous_slot_without_download(
    agent: Agent, api: FakeDeviceApi, releases: Releases, clock: FakeClock
) -> None:
    api.offer(releases.make(2).offer())
    agent.sync_once()
    assert active_version(agent) == 2
    provisioned_v1 = Slots(agent.config.slots_dir).validate("a")
    blob = "v1-again"
    api.blobs[blob] = (agent.config.slots_dir / "a" / "model.onnx").read_bytes()
    requests = len(api.blob_requests)
    api.offer(
        Offer(
            action="rollback",
            manifest=provisioned_v1.model_dump(mode="json"),
            blob_name=blob,
            rollback_directive=directive(clock, releases.key, revoked=[2], to=1),
        )
    )
    outcome = agent.sync_once().update.outcome  # type: ignore[union-attr]
    assert outcome is not None
    assert outcome.result == "installed"
    assert outcome.action == "rollback"
    assert active_version(agent) == 1
    assert len(api.blob_requests) == requests  # v1 was still in the other slot
    state = agent.updater.store.load()
    assert state.highest_version == 2  # the floor stays: v2 can never come back by replay
    api.offer(releases.make(2).offer())
    assert agent.sync_once().update.outcome.attack == RollbackAttackError.attack  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "problem", ["forged", "expired", "not-withdrawing-installed", "other-target"]
)
def test_rejects_invalid_rollback_directive(
    agent: Agent,
    api: FakeDeviceApi,
    releases: Releases,
    clock: FakeClock,
    rogue_key: Ed25519PrivateKey,
    problem: str,
) -> None:
    api.offer(releases.make(2).offer())
    agent.sync_once()
    v1 = Slots(agent.config.slots_dir).validate("a")
    api.blobs["v1"] = (agent.config.slots_dir / "a" / "model.onnx").read_bytes()
    kwargs: dict[str, object] = {"revoked": [2], "to": 1}
    key = releases.key
    if problem == "forged":
        key = rogue_key
    elif problem == "expired":
        kwargs["expires_at"] = clock.now() - timedelta(seconds=1)
    elif problem == "not-withdrawing-installed":
        kwargs["revoked"] = [7]
    else:
        kwargs["to"] = 5
    api.offer(
        Offer(
            action="rollback",
            manifest=v1.model_dump(mode="json"),
            blob_name="v1",
            rollback_directive=directive(clock, key, **kwargs),  # type: ignore[arg-type]
        )
    )
    outcome = agent.sync_once().update.outcome  # type: ignore[union-attr]
    assert outcome is not None
    assert outcome.result == "rejected"
    assert active_version(agent) == 2


def test_directive_signed_by_distribution_service_is_accepted(
    agent: Agent, api: FakeDeviceApi, releases: Releases, clock: FakeClock
) -> None:
    """A directive signed by the cloud's distribution service is accepted by the device."""
    from functions.distribution.signing import ManifestSigner
    from models.runtime.rollback_directive import RollbackDirective as CloudDirective

    api.offer(releases.make(2).offer())
    agent.sync_once()
    cloud = ManifestSigner(releases.key).sign_directive(
        CloudDirective(
            name="edgescribe-edge",
            to_version=1,
            revoked_versions=[2],
            issued_at=clock.now(),
            expires_at=clock.now() + timedelta(days=1),
            reason="regression",
        )
    )
    v1 = Slots(agent.config.slots_dir).validate("a")
    api.blobs["v1"] = (agent.config.slots_dir / "a" / "model.onnx").read_bytes()
    api.offer(
        Offer(
            action="rollback",
            manifest=v1.model_dump(mode="json"),
            blob_name="v1",
            rollback_directive=cloud.model_dump(mode="json"),
        )
    )
    assert agent.sync_once().update.outcome.result == "installed"  # type: ignore[union-attr]
    assert active_version(agent) == 1


def test_key_rotation_trusts_new_key_and_revokes_old(
    agent: Agent, api: FakeDeviceApi, releases: Releases, releaser_key: Ed25519PrivateKey
) -> None:
    new_key = Ed25519PrivateKey.generate()
    root = TrustRoot.for_keys([new_key.public_key()], version=1, threshold=1)
    root = root.signed_by(releaser_key).signed_by(new_key)  # old owners agree, new owner holds key
    api.offer(Offer(action="none", trust_root=root.model_dump(mode="json")))
    agent.sync_once()
    assert agent.updater.trust_root().version == 1
    api.offer(releases.make(2, keys=[releaser_key]).offer())  # the revoked key alone
    assert agent.sync_once().update.outcome.result == "rejected"  # type: ignore[union-attr]
    api.offer(releases.make(3, keys=[new_key]).offer())
    assert agent.sync_once().update.outcome.result == "installed"  # type: ignore[union-attr]


def test_key_rotation_signed_only_by_new_key_is_refused(
    agent: Agent, api: FakeDeviceApi, rogue_key: Ed25519PrivateKey
) -> None:
    root = TrustRoot.for_keys([rogue_key.public_key()], version=1, threshold=1).signed_by(rogue_key)
    api.offer(Offer(action="none", trust_root=root.model_dump(mode="json")))
    agent.sync_once()
    assert agent.updater.trust_root().version == 0  # still the pinned keys


def test_abandons_pending_update_the_server_withdrew(
    agent: Agent, api: FakeDeviceApi, releases: Releases
) -> None:
    v2 = releases.make(2)
    api.offer(v2.offer())
    api.blob_fault = BlobFault.CUT_ONCE
    api.cut_after = 4096
    agent.run_cycle()
    assert agent.updater.store.load().pending is not None
    api.offer(Offer(action="none"))
    agent.sync_once()
    state = agent.updater.store.load()
    assert state.pending is None
    assert state.last_outcome is not None
    assert state.last_outcome.result == "abandoned"
    assert not list(agent.config.downloads_dir.glob("*.part"))
    assert active_version(agent) == 1
