"""Every attack on the update path is refused, and the device keeps running its old model.

Each test offers one hostile update through the fake device API, runs one real agent cycle
(heartbeat → ask → download → verify …) and checks three things: the update was rejected by the
check meant for that attack, the old model is still active and intact, and the next heartbeat
reports the rejection to the fleet.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge.agent import Agent
from edge.clock import FakeClock
from edge.config import AgentConfig
from edge.errors import (
    BadSignatureError,
    EndlessDataError,
    ExpiredManifestError,
    HashMismatchError,
    LengthMismatchError,
    RollbackAttackError,
    SlowRetrievalError,
    UnknownKeyError,
    UpdateRejectedError,
)
from edge.slots import Slots
from tests.edge.conftest import Releases
from tests.edge.fake_device_api import BlobFault, FakeDeviceApi, Offer


def assert_old_model_kept(agent: Agent, version: int = 1) -> None:
    slots = Slots(agent.config.slots_dir)
    active = slots.active()
    assert active is not None
    assert slots.validate(active).version == version  # intact: bytes match the manifest
    state = agent.updater.store.load()
    assert state.installed is not None
    assert state.installed.version == version
    assert state.pending is None


def run_rejected_cycle(
    agent: Agent, api: FakeDeviceApi, rejection: type[UpdateRejectedError]
) -> None:
    result = agent.sync_once()
    assert result.rejected
    assert result.update is not None
    outcome = result.update.outcome
    assert outcome is not None
    assert outcome.result == "rejected"
    assert outcome.attack == rejection.attack, outcome.reason
    assert_old_model_kept(agent)
    agent.sync_once()  # the next heartbeat carries the rejection
    report = api.heartbeats[-1]
    assert report["version"] == 1
    assert report["health"] == "degraded"
    assert "rejected" in report["last_error"]


def test_rejects_tampered_bytes(agent: Agent, api: FakeDeviceApi, releases: Releases) -> None:
    api.offer(releases.make(2).offer())
    api.blob_fault = BlobFault.TAMPER
    run_rejected_cycle(agent, api, HashMismatchError)
    assert not list(agent.config.downloads_dir.glob("*.part"))  # hostile bytes are not kept


def test_rejects_wrong_length(agent: Agent, api: FakeDeviceApi, releases: Releases) -> None:
    api.offer(releases.make(2).offer())
    api.blob_fault = BlobFault.SHORT
    run_rejected_cycle(agent, api, LengthMismatchError)


def test_rejects_bad_signature(agent: Agent, api: FakeDeviceApi, releases: Releases) -> None:
    genuine = releases.make(2)
    evil = releases.make(3, releases.base + b"")  # bytes the attacker wants installed
    forged = genuine.manifest_json | {"sha256": evil.manifest.sha256, "size": evil.manifest.size}
    api.offer(Offer(action="update", manifest=forged, blob_name=evil.blob_name))
    run_rejected_cycle(agent, api, BadSignatureError)
    assert api.blob_requests == []  # refused before a single byte was downloaded


def test_rejects_unknown_key(
    agent: Agent, api: FakeDeviceApi, releases: Releases, rogue_key: Ed25519PrivateKey
) -> None:
    api.offer(releases.make(2, keys=[rogue_key]).offer())
    run_rejected_cycle(agent, api, UnknownKeyError)
    assert api.blob_requests == []


def test_rejects_unsigned_manifest(agent: Agent, api: FakeDeviceApi, releases: Releases) -> None:
    api.offer(releases.make(2, keys=[]).offer())
    run_rejected_cycle(agent, api, BadSignatureError)


def test_rejects_rollback_attack(
    config: AgentConfig, clock: FakeClock, api: FakeDeviceApi, releases: Releases
) -> None:
    agent = Agent(config, clock=clock)
    v3 = releases.make(3)
    api.offer(v3.offer())
    assert agent.sync_once().update.outcome.result == "installed"  # type: ignore[union-attr]
    # An attacker replays the genuine, still-unexpired manifest of v2 (say, with a known flaw).
    api.offer(releases.make(2).offer())
    result = agent.sync_once()
    assert result.update is not None
    assert result.update.outcome is not None
    assert result.update.outcome.result == "rejected"
    assert result.update.outcome.attack == RollbackAttackError.attack
    assert_old_model_kept(agent, version=3)
    # Replaying the version the device already had before (v1, still in the other slot) fails too.
    api.offer(
        Offer(
            action="rollback",
            manifest=api.offers["*"].manifest,
            blob_name=api.offers["*"].blob_name,
        )
    )
    assert agent.sync_once().update.outcome.attack == RollbackAttackError.attack  # type: ignore[union-attr]
    assert_old_model_kept(agent, version=3)


def test_rejects_frozen_feed(
    agent: Agent, api: FakeDeviceApi, releases: Releases, clock: FakeClock
) -> None:
    stale = releases.make(2, expires_at=clock.now() + timedelta(hours=1))
    clock.advance(2 * 3600)  # the attacker keeps serving it after it expired
    api.offer(stale.offer())
    run_rejected_cycle(agent, api, ExpiredManifestError)
    assert api.blob_requests == []


def test_rejects_manifest_without_expiry(
    agent: Agent, api: FakeDeviceApi, releases: Releases
) -> None:
    release = releases.make(2)
    unsigned_expiry = release.manifest.model_copy(update={"expires_at": None, "signatures": []})
    from models.runtime.manifest import sign_manifest

    api.offer(
        Offer(
            action="update",
            manifest=sign_manifest(unsigned_expiry, releases.key).model_dump(mode="json"),
            blob_name=release.blob_name,
        )
    )
    run_rejected_cycle(agent, api, ExpiredManifestError)


def test_rejects_endless_data(agent: Agent, api: FakeDeviceApi, releases: Releases) -> None:
    api.offer(releases.make(2).offer())
    api.blob_fault = BlobFault.ENDLESS
    run_rejected_cycle(agent, api, EndlessDataError)
    assert not list(agent.config.downloads_dir.glob("*.part"))


def test_rejects_announced_oversize(agent: Agent, api: FakeDeviceApi, releases: Releases) -> None:
    api.offer(releases.make(2).offer())
    api.blob_fault = BlobFault.OVERSIZE
    run_rejected_cycle(agent, api, EndlessDataError)


def test_rejects_manifest_over_device_cap(
    config: AgentConfig, clock: FakeClock, api: FakeDeviceApi, releases: Releases
) -> None:
    from dataclasses import replace

    from edge.errors import IncompatibleModelError

    release = releases.make(2)
    agent = Agent(replace(config, max_model_bytes=release.manifest.size - 1), clock=clock)
    api.offer(release.offer())
    run_rejected_cycle(agent, api, IncompatibleModelError)
    assert api.blob_requests == []


def test_rejects_slow_retrieval(
    config: AgentConfig, clock: FakeClock, api: FakeDeviceApi, releases: Releases
) -> None:
    from dataclasses import replace

    # 512 B every 20 ms ≈ 25 KB/s: never idle long enough for the 2 s read timeout, but far
    # below the device's minimum rate (the whole model in 0.5 s, + 0.5 s grace), so the
    # whole-transfer deadline trips after about a second, whatever the model's size.
    release = releases.make(2)
    agent = Agent(
        replace(
            config,
            download_grace_seconds=0.5,
            min_download_bytes_per_second=max(release.manifest.size / 0.5, 64 * 1024),
        ),
        clock=clock,
    )
    api.offer(release.offer())
    api.blob_fault = BlobFault.SLOW
    run_rejected_cycle(agent, api, SlowRetrievalError)


def test_rejects_wrong_model_name(agent: Agent, api: FakeDeviceApi, releases: Releases) -> None:
    from edge.errors import WrongModelError

    api.offer(releases.make(2, name="edgescribe-cloud").offer())
    run_rejected_cycle(agent, api, WrongModelError)


def test_rejects_model_needing_newer_agent(
    agent: Agent, api: FakeDeviceApi, releases: Releases
) -> None:
    from edge.errors import IncompatibleModelError

    api.offer(releases.make(2, min_agent_version="9.0.0").offer())
    run_rejected_cycle(agent, api, IncompatibleModelError)


@pytest.mark.parametrize(
    "garbage", [{"action": "update", "manifest": {"name": 3}}, {"version": "x"}]
)
def test_rejects_hostile_manifest_json(
    agent: Agent, api: FakeDeviceApi, releases: Releases, garbage: dict[str, object]
) -> None:
    from edge.errors import MalformedManifestError

    release = releases.make(2)
    api.offer(Offer(action="update", manifest=garbage, blob_name=release.blob_name))
    run_rejected_cycle(agent, api, MalformedManifestError)
