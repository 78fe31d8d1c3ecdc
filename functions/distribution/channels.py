"""Channel pointers and their history, in the models bucket.

``models/channels/<channel>.json`` (``storage_layout.channel_key``) holds one ``ChannelState``: the
model version the channel serves, its rollout percentage, who changed it, why, and — after a
rollback — the signed ``RollbackDirective``. Every change also writes one ``ChannelChange`` under
``storage_layout.channel_history_key``, so the history of a channel is a listing.

Writes are conditional (S3 ``If-Match`` on the ETag read, ``If-None-Match: *`` for a new channel):
two operators promoting at once cannot silently overwrite each other; the loser gets
``ChannelConflictError`` and re-reads. The state is written first and the history entry second; the
state itself carries the last change's actor, reason and time, so a failed history write loses no
information about the current pointer (and the error is raised, not swallowed).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal, get_args

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field

from functions.common.s3_errors import is_missing, is_precondition_failed
from functions.distribution.errors import ChannelConflictError
from models.runtime import storage_layout
from models.runtime.rollback_directive import RollbackDirective

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

Channel = Literal["shadow", "canary", "stable"]
CHANNELS: tuple[Channel, ...] = get_args(Channel)
assert set(CHANNELS) == set(storage_layout.CHANNELS), "channel names drifted from storage_layout"

ChangeAction = Literal["promote", "rollback", "refresh"]
_HISTORY_ATTEMPTS = 1000


class ChannelState(BaseModel):
    """What one channel serves now."""

    model_config = ConfigDict(frozen=True)

    channel: Channel
    name: str
    version: int = Field(ge=1)
    rollout_percent: float = Field(ge=0.0, le=100.0)
    previous_version: int | None = None
    updated_at: datetime
    updated_by: str
    reason: str = ""
    revision: int = Field(default=1, ge=1)
    rollback: RollbackDirective | None = None


class ChannelChange(BaseModel):
    """One entry of a channel's history."""

    model_config = ConfigDict(frozen=True)

    channel: Channel
    action: ChangeAction
    name: str
    from_version: int | None
    to_version: int
    rollout_percent: float
    actor: str
    reason: str = ""
    at: datetime
    revision: int


class VersionedState(BaseModel):
    """A state as read, with the ETag a conditional write must match."""

    model_config = ConfigDict(frozen=True)

    state: ChannelState
    etag: str


class ChannelStore:
    """Reads and conditionally writes channel states and history in one bucket."""

    def __init__(self, s3: S3Client, bucket: str) -> None:
        self._s3 = s3
        self._bucket = bucket

    def read(self, channel: Channel) -> VersionedState | None:
        try:
            response = self._s3.get_object(
                Bucket=self._bucket, Key=storage_layout.channel_key(channel)
            )
        except ClientError as exc:
            if is_missing(exc):
                return None
            raise
        body = response["Body"].read()
        return VersionedState(
            state=ChannelState.model_validate_json(body), etag=response["ETag"].strip('"')
        )

    def read_all(self) -> dict[Channel, ChannelState | None]:
        states: dict[Channel, ChannelState | None] = {}
        for channel in CHANNELS:
            current = self.read(channel)
            states[channel] = current.state if current else None
        return states

    def write(
        self, state: ChannelState, change: ChannelChange, *, expected_etag: str | None
    ) -> None:
        """Replace the channel's state if nobody changed it since ``expected_etag`` was read."""
        condition: dict[str, str] = (
            {"IfMatch": f'"{expected_etag}"'} if expected_etag else {"IfNoneMatch": "*"}
        )
        try:
            self._s3.put_object(
                Bucket=self._bucket,
                Key=storage_layout.channel_key(state.channel),
                Body=state.model_dump_json(indent=2).encode(),
                ContentType="application/json",
                **condition,  # type: ignore[arg-type]
            )
        except ClientError as exc:
            if is_precondition_failed(exc):
                raise ChannelConflictError(
                    f"channel {state.channel!r} changed while this {change.action} was prepared; "
                    "read its status and try again"
                ) from exc
            raise
        self._append_history(change)

    def _append_history(self, change: ChannelChange) -> None:
        """Write the entry under a key no other entry has (keys are timestamps: on a clash, the
        next microsecond), so two changes in the same instant both stay in the history."""
        for _ in range(_HISTORY_ATTEMPTS):
            try:
                self._s3.put_object(
                    Bucket=self._bucket,
                    Key=storage_layout.channel_history_key(change.channel, change.at),
                    Body=change.model_dump_json(indent=2).encode(),
                    ContentType="application/json",
                    IfNoneMatch="*",
                )
                return
            except ClientError as exc:
                if not is_precondition_failed(exc):
                    raise
                change = change.model_copy(update={"at": change.at + timedelta(microseconds=1)})
        raise ChannelConflictError(
            f"could not find a free history key for {change.channel!r} near {change.at}"
        )

    def history(self, channel: Channel, limit: int = 20) -> list[ChannelChange]:
        """The newest ``limit`` changes of ``channel``, newest first."""
        prefix = _history_prefix(channel)
        keys: list[str] = []
        paginator = self._s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self._bucket, Prefix=prefix):
            keys.extend(item["Key"] for item in page.get("Contents", []))
        changes = []
        for key in sorted(keys, reverse=True)[:limit]:
            body = self._s3.get_object(Bucket=self._bucket, Key=key)["Body"].read()
            changes.append(ChannelChange.model_validate_json(body))
        return changes


def _history_prefix(channel: Channel) -> str:
    """The folder of ``channel``'s history keys, derived from the layout (never built by hand)."""
    sample = storage_layout.channel_history_key(channel, datetime(2000, 1, 1))
    return sample.rpartition("/")[0] + "/"
