"""S3 event notifications, parsed leniently from an SQS message body.

Why not powertools' ``S3Model``: it requires fields that not every producer sends. moto's server
omits ``userIdentity``, ``requestParameters``, ``responseElements`` and ``sequencer`` (see
docs/measured facts), S3's own ``s3:TestEvent`` has a different shape altogether, and an S3 → SNS →
SQS fan-out wraps the notification in an SNS envelope. This module reads only what the batch
function needs (bucket, key, size, ETag, version id) and accepts each of those shapes.

Rules:
- Object keys arrive URL-encoded the ``quote_plus`` way (``+`` for space; moto also encodes ``/``);
  they are decoded exactly once here, so ``%252E`` stays ``%2E`` and a later key check rejects it.
- Only ``ObjectCreated:*`` records are returned; others (``ObjectRemoved``, ...) are listed as
  ignored.
- A body that is not a notification at all raises ``MalformedEventError`` naming what is wrong; the
  caller records it rather than retrying a message that can never succeed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus

from pydantic import BaseModel, ConfigDict, ValidationError


class MalformedEventError(ValueError):
    """An SQS message body that is not an S3 event notification (the reason says why)."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"malformed S3 event: {reason}")
        self.reason = reason


class S3ObjectEvent(BaseModel):
    """One created object, as the batch function needs it (the key already URL-decoded)."""

    model_config = ConfigDict(frozen=True)

    bucket: str
    key: str
    size: int | None = None
    etag: str | None = None
    version_id: str | None = None
    event_name: str = "ObjectCreated:Put"
    event_time: str | None = None

    def identity(self) -> dict[str, str | None]:
        """What makes one upload one upload: the same bytes at the same key and version.

        Used as the idempotency key: a redelivered message has the same identity, a new upload to
        the same key has a new ETag (and, in a versioned bucket, a new version id).
        """
        return {
            "bucket": self.bucket,
            "key": self.key,
            "etag": self.etag,
            "version_id": self.version_id,
        }

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


@dataclass(frozen=True)
class S3Notification:
    """What one SQS message carried."""

    objects: list[S3ObjectEvent] = field(default_factory=list)
    #: True for S3's ``s3:TestEvent``, sent once when a notification is configured.
    is_test_event: bool = False
    #: Event names of records that were not object creations (kept for logging).
    ignored_events: list[str] = field(default_factory=list)


class _RawBucket(BaseModel):
    name: str


class _RawObject(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    key: str
    size: int | None = None
    eTag: str | None = None  # noqa: N815 - S3's field name
    versionId: str | None = None  # noqa: N815 - S3's field name


class _RawEntity(BaseModel):
    bucket: _RawBucket
    object: _RawObject


class _RawRecord(BaseModel):
    eventName: str = ""  # noqa: N815 - S3's field name
    eventTime: str | None = None  # noqa: N815 - S3's field name
    s3: _RawEntity


def parse_notification(body: str) -> S3Notification:
    """Parse an SQS message body holding an S3 notification (direct or wrapped in SNS)."""
    try:
        document = json.loads(body)
    except json.JSONDecodeError as exc:
        raise MalformedEventError(f"body is not JSON ({exc.msg} at position {exc.pos})") from exc
    document = _unwrap_sns(document)
    if not isinstance(document, dict):
        raise MalformedEventError(f"body is JSON {type(document).__name__}, expected an object")
    if document.get("Event") == "s3:TestEvent":
        return S3Notification(is_test_event=True)
    records = document.get("Records")
    if not isinstance(records, list):
        raise MalformedEventError("no 'Records' list in the body")
    objects: list[S3ObjectEvent] = []
    ignored: list[str] = []
    for index, raw in enumerate(records):
        try:
            record = _RawRecord.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            raise MalformedEventError(f"record {index}: {where}: {first['msg']}") from exc
        if not record.eventName.startswith("ObjectCreated"):
            ignored.append(record.eventName or "<no eventName>")
            continue
        objects.append(
            S3ObjectEvent(
                bucket=record.s3.bucket.name,
                key=unquote_plus(record.s3.object.key),
                size=record.s3.object.size,
                etag=record.s3.object.eTag.strip('"') if record.s3.object.eTag else None,
                version_id=record.s3.object.versionId or None,
                event_name=record.eventName,
                event_time=record.eventTime,
            )
        )
    return S3Notification(objects=objects, ignored_events=ignored)


def _unwrap_sns(document: Any) -> Any:
    """S3 → SNS → SQS delivers ``{"Type": "Notification", "Message": "<the S3 event JSON>"}``."""
    if isinstance(document, dict) and document.get("Type") == "Notification":
        message = document.get("Message")
        if not isinstance(message, str):
            raise MalformedEventError("SNS envelope without a string 'Message'")
        try:
            return json.loads(message)
        except json.JSONDecodeError as exc:
            raise MalformedEventError(f"SNS 'Message' is not JSON ({exc.msg})") from exc
    return document
