"""Device records in DynamoDB: device → tenant, channel pin, installed version, last heartbeat, health.

Invariants:

- *A device belongs to one tenant for life.* The first request from a device id registers it under
  the caller's tenant; every later write is conditional on ``tenant`` matching
  (``attribute_not_exists(device_id) OR tenant = :tenant``). A token of another tenant that claims
  the same device id gets ``DeviceOwnershipError`` and can neither read nor overwrite the record.
- *Heartbeats never move backwards in time*: a delayed heartbeat older than the stored one does
  not overwrite it (``last_heartbeat`` is compared in the condition), so a device's state is the
  newest it reported.
- Writes are single ``UpdateItem`` calls (no read-modify-write races between containers).
- *A failed update is remembered.* The edge agent reports a reverted or rejected version once, in
  ``last_error``, and clears it on the next heartbeat; the registry adds that version to the
  device's ``failed_versions`` set, so the canary gate still sees it hours later.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field

from functions.distribution.channels import Channel
from models.runtime import storage_layout

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

Health = Literal["ok", "degraded", "failing"]
#: Longest ``last_error`` stored; longer reports are cut (a device must not fill the table).
MAX_ERROR_CHARS = 2000
#: How the edge agent (``edge.updater``) reports an update it undid: ``update v7 reverted: ...``
#: after a failed post-switch health check, ``v7 rejected: ...`` when verification refused it.
_FAILED_UPDATE = re.compile(r"^(?:update )?v(\d+) (?:reverted|rejected)\b")


def failed_update_version(error: str | None) -> int | None:
    """The model version a device's ``last_error`` says it reverted or rejected, if any."""
    match = _FAILED_UPDATE.match(error or "")
    return int(match.group(1)) if match else None


class DeviceOwnershipError(Exception):
    """The device id is registered to another tenant (reported to callers as "not found")."""


class HeartbeatReport(BaseModel):
    """What a device says about itself."""

    model_config = ConfigDict(frozen=True)

    version: int | None = Field(default=None, ge=0)
    health: Health
    queue_depth: int = Field(default=0, ge=0)
    last_error: str | None = None
    agent_version: str | None = None


class DeviceRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    device_id: str
    tenant: str
    channel: Channel | None = None
    current_version: int | None = None
    health: Health | None = None
    queue_depth: int | None = None
    last_error: str | None = None
    agent_version: str | None = None
    last_heartbeat: datetime | None = None
    registered_at: datetime
    #: Versions this device ever reverted or rejected (kept after ``last_error`` is cleared).
    failed_versions: frozenset[int] = frozenset()


class FleetSummary(BaseModel):
    devices: int
    by_version: dict[str, int]
    by_health: dict[str, int]


class DeviceRegistry:
    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._client = client
        self._table = table

    def get(self, device_id: str) -> DeviceRecord | None:
        response = self._client.get_item(
            TableName=self._table, Key={"device_id": {"S": device_id}}, ConsistentRead=True
        )
        item = response.get("Item")
        return _record_from_item(item) if item else None

    def get_for_tenant(self, device_id: str, tenant: str) -> DeviceRecord | None:
        """The record if it exists *and* belongs to ``tenant``; raises if another tenant owns it."""
        record = self.get(device_id)
        if record is not None and record.tenant != tenant:
            raise DeviceOwnershipError(
                f"device {device_id!r} is not registered to tenant {tenant!r}"
            )
        return record

    def ensure_registered(
        self, device_id: str, tenant: str, now: datetime | None = None
    ) -> DeviceRecord:
        """Register the device under ``tenant`` unless it already is; refuse another tenant's device."""
        storage_layout.validate_id(device_id, "device id")
        now = now or datetime.now(UTC)
        return self._update(
            device_id,
            tenant,
            "SET tenant = if_not_exists(tenant, :tenant), "
            "registered_at = if_not_exists(registered_at, :now)",
            {":now": {"S": _timestamp(now)}},
        )

    def record_heartbeat(
        self, device_id: str, tenant: str, report: HeartbeatReport, now: datetime | None = None
    ) -> DeviceRecord:
        storage_layout.validate_id(device_id, "device id")
        now = now or datetime.now(UTC)
        values: dict[str, Any] = {
            ":now": {"S": _timestamp(now)},
            ":health": {"S": report.health},
            ":queue": {"N": str(report.queue_depth)},
            ":version": {"N": str(report.version)}
            if report.version is not None
            else {"NULL": True},
            ":error": {"S": report.last_error[:MAX_ERROR_CHARS]}
            if report.last_error
            else {"NULL": True},
            ":agent": {"S": report.agent_version} if report.agent_version else {"NULL": True},
        }
        expression = (
            "SET tenant = if_not_exists(tenant, :tenant), "
            "registered_at = if_not_exists(registered_at, :now), last_heartbeat = :now, "
            "health = :health, queue_depth = :queue, current_version = :version, "
            "last_error = :error, agent_version = :agent"
        )
        failed = failed_update_version(report.last_error)
        if failed is not None:
            expression += " ADD failed_versions :failed"
            values[":failed"] = {"NS": [str(failed)]}
        return self._update(
            device_id,
            tenant,
            expression,
            values,
            extra_condition="(attribute_not_exists(last_heartbeat) OR last_heartbeat <= :now)",
        )

    def pin_channel(self, device_id: str, tenant: str, channel: Channel | None) -> DeviceRecord:
        """Pin the device to a channel (``None`` unpins: bucketing decides again)."""
        storage_layout.validate_id(device_id, "device id")
        now = datetime.now(UTC)
        if channel is None:
            expression = (
                "SET tenant = if_not_exists(tenant, :tenant), "
                "registered_at = if_not_exists(registered_at, :now) REMOVE channel"
            )
            values: dict[str, Any] = {":now": {"S": _timestamp(now)}}
        else:
            expression = (
                "SET tenant = if_not_exists(tenant, :tenant), "
                "registered_at = if_not_exists(registered_at, :now), channel = :channel"
            )
            values = {":now": {"S": _timestamp(now)}, ":channel": {"S": channel}}
        return self._update(device_id, tenant, expression, values)

    def list_devices(self, tenant: str) -> list[DeviceRecord]:
        records: list[DeviceRecord] = []
        paginator = self._client.get_paginator("scan")
        for page in paginator.paginate(
            TableName=self._table,
            FilterExpression="tenant = :tenant",
            ExpressionAttributeValues={":tenant": {"S": tenant}},
            ConsistentRead=True,
        ):
            records.extend(_record_from_item(item) for item in page.get("Items", []))
        return sorted(records, key=lambda record: record.device_id)

    def list_all_devices(self) -> list[DeviceRecord]:
        """Every device of every tenant: a canary's health gate judges the whole fleet."""
        records: list[DeviceRecord] = []
        paginator = self._client.get_paginator("scan")
        for page in paginator.paginate(TableName=self._table, ConsistentRead=True):
            records.extend(_record_from_item(item) for item in page.get("Items", []))
        return sorted(records, key=lambda record: record.device_id)

    def summary(self, tenant: str) -> FleetSummary:
        devices = self.list_devices(tenant)
        by_version: dict[str, int] = {}
        by_health: dict[str, int] = {}
        for device in devices:
            version = str(device.current_version) if device.current_version is not None else "none"
            by_version[version] = by_version.get(version, 0) + 1
            health = device.health or "unknown"
            by_health[health] = by_health.get(health, 0) + 1
        return FleetSummary(devices=len(devices), by_version=by_version, by_health=by_health)

    def _update(
        self,
        device_id: str,
        tenant: str,
        expression: str,
        values: dict[str, Any],
        *,
        extra_condition: str | None = None,
    ) -> DeviceRecord:
        condition = "(attribute_not_exists(device_id) OR tenant = :tenant)"
        if extra_condition:
            condition = f"{condition} AND {extra_condition}"
        try:
            response = self._client.update_item(
                TableName=self._table,
                Key={"device_id": {"S": device_id}},
                UpdateExpression=expression,
                ConditionExpression=condition,
                ExpressionAttributeValues={":tenant": {"S": tenant}, **values},
                ReturnValues="ALL_NEW",
            )
            return _record_from_item(response["Attributes"])
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            existing = self.get(device_id)
            if existing is not None and existing.tenant != tenant:
                raise DeviceOwnershipError(
                    f"device {device_id!r} is not registered to tenant {tenant!r}"
                ) from exc
            if existing is None:  # deleted between the write and the read: report, don't guess
                raise
            return existing  # a newer heartbeat is already stored: this one is stale


def _timestamp(moment: datetime) -> str:
    """Fixed-width UTC timestamps, so DynamoDB's string comparison orders them by time."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _record_from_item(item: dict[str, Any]) -> DeviceRecord:
    def text(name: str) -> str | None:
        value = item.get(name)
        return value["S"] if value and "S" in value else None

    def number(name: str) -> int | None:
        value = item.get(name)
        return int(value["N"]) if value and "N" in value else None

    return DeviceRecord.model_validate(
        {
            "device_id": text("device_id"),
            "tenant": text("tenant"),
            "channel": text("channel"),
            "current_version": number("current_version"),
            "health": text("health"),
            "queue_depth": number("queue_depth"),
            "last_error": text("last_error"),
            "agent_version": text("agent_version"),
            "last_heartbeat": text("last_heartbeat"),
            "registered_at": text("registered_at"),
            "failed_versions": frozenset(
                int(n) for n in item.get("failed_versions", {}).get("NS", [])
            ),
        }
    )
