"""The device registry on the moto server's DynamoDB."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from functions.fleet.registry import (
    MAX_ERROR_CHARS,
    DeviceOwnershipError,
    DeviceRegistry,
    HeartbeatReport,
    failed_update_version,
)
from models.runtime.storage_layout import InvalidKeyError
from tests.functions.batch_stack import BatchStack

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


@pytest.fixture
def registry(batch_stack: BatchStack) -> DeviceRegistry:
    return DeviceRegistry(batch_stack.dynamodb, batch_stack.names.devices_table)


def test_first_heartbeat_registers_the_device_under_its_tenant(registry: DeviceRegistry) -> None:
    record = registry.record_heartbeat(
        "dev-1",
        "acme",
        HeartbeatReport(version=3, health="ok", queue_depth=2, agent_version="0.1.0"),
        T0,
    )
    assert (record.tenant, record.current_version, record.health, record.queue_depth) == (
        "acme",
        3,
        "ok",
        2,
    )
    assert record.last_heartbeat == T0
    assert record.registered_at == T0
    assert registry.get("dev-1") == record


def test_rejects_another_tenant_claiming_a_registered_device(registry: DeviceRegistry) -> None:
    registry.record_heartbeat("dev-1", "acme", HeartbeatReport(version=3, health="ok"), T0)
    with pytest.raises(DeviceOwnershipError):
        registry.record_heartbeat(
            "dev-1",
            "globex",
            HeartbeatReport(version=1, health="failing"),
            T0 + timedelta(seconds=1),
        )
    with pytest.raises(DeviceOwnershipError):
        registry.pin_channel("dev-1", "globex", "shadow")
    with pytest.raises(DeviceOwnershipError):
        registry.get_for_tenant("dev-1", "globex")
    record = registry.get("dev-1")
    assert record is not None
    assert (record.tenant, record.current_version, record.health, record.channel) == (
        "acme",
        3,
        "ok",
        None,
    )


def test_a_delayed_heartbeat_never_overwrites_a_newer_one(registry: DeviceRegistry) -> None:
    registry.record_heartbeat("dev-1", "acme", HeartbeatReport(version=4, health="ok"), T0)
    stale = registry.record_heartbeat(
        "dev-1", "acme", HeartbeatReport(version=3, health="failing"), T0 - timedelta(minutes=1)
    )
    assert (stale.current_version, stale.health, stale.last_heartbeat) == (4, "ok", T0)


def test_heartbeat_times_order_correctly_across_whole_seconds(registry: DeviceRegistry) -> None:
    """Timestamps are fixed-width: 12:00:00 vs 12:00:00.5 must compare by time, not by text."""
    registry.record_heartbeat(
        "dev-1",
        "acme",
        HeartbeatReport(version=1, health="ok"),
        T0 + timedelta(microseconds=500_000),
    )
    stale = registry.record_heartbeat(
        "dev-1", "acme", HeartbeatReport(version=0, health="failing"), T0
    )
    assert stale.current_version == 1


def test_a_long_error_report_is_cut_not_refused(registry: DeviceRegistry) -> None:
    record = registry.record_heartbeat(
        "dev-1", "acme", HeartbeatReport(health="degraded", last_error="x" * 50_000), T0
    )
    assert record.last_error == "x" * MAX_ERROR_CHARS


def test_pinning_and_unpinning_a_channel(registry: DeviceRegistry) -> None:
    registry.ensure_registered("lab-1", "acme", T0)
    assert registry.pin_channel("lab-1", "acme", "shadow").channel == "shadow"
    assert registry.pin_channel("lab-1", "acme", None).channel is None


def test_rejects_hostile_device_ids_before_touching_the_table(registry: DeviceRegistry) -> None:
    with pytest.raises(InvalidKeyError):
        registry.ensure_registered("../../other", "acme", T0)


def test_listing_and_summary_are_scoped_to_one_tenant(registry: DeviceRegistry) -> None:
    registry.record_heartbeat("a-1", "acme", HeartbeatReport(version=3, health="ok"), T0)
    registry.record_heartbeat("a-2", "acme", HeartbeatReport(version=4, health="degraded"), T0)
    registry.record_heartbeat("g-1", "globex", HeartbeatReport(version=4, health="ok"), T0)
    assert [d.device_id for d in registry.list_devices("acme")] == ["a-1", "a-2"]
    summary = registry.summary("acme")
    assert summary.devices == 2
    assert summary.by_version == {"3": 1, "4": 1}
    assert summary.by_health == {"ok": 1, "degraded": 1}


def test_a_reverted_update_is_remembered_after_the_device_clears_its_error(
    registry: DeviceRegistry,
) -> None:
    """The agent reports a revert once; the canary gate may look hours later."""
    start = datetime(2026, 11, 25, 12, tzinfo=UTC)
    reverted = HeartbeatReport(
        version=1, health="degraded", last_error="update v2 reverted: smoke test failed"
    )
    registry.record_heartbeat("phone-9", "acme", reverted, now=start)
    rejected = HeartbeatReport(version=1, health="ok", last_error="v3 rejected: bad signature")
    registry.record_heartbeat("phone-9", "acme", rejected, now=start + timedelta(minutes=1))
    clean = HeartbeatReport(version=1, health="ok")
    record = registry.record_heartbeat("phone-9", "acme", clean, now=start + timedelta(minutes=2))
    assert record.last_error is None
    assert record.failed_versions == frozenset({2, 3})
    assert failed_update_version("update v12 reverted: x") == 12
    assert failed_update_version("download failed: v2 reverted upstream") is None
