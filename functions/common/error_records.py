"""Error records: the visible outcome of an upload that cannot become a transcript.

Every upload ends as a transcript or as an error record; nothing is dropped silently. A record
names the source object (bucket, key, ETag, version), a machine-readable ``code``, the ``reason`` a
person reads, and when it happened. It is written to the transcripts bucket beside where the
transcript would have been:

- ``errors/<tenant>/<id>.json`` when the key names a valid recording;
- ``errors/_unroutable/<digest>.json`` when it does not (hostile or foreign keys, malformed
  messages): the digest is derived from the source, so a redelivered bad message overwrites its
  own record instead of piling up new ones.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

from models.runtime import storage_layout

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

ErrorCode = Literal[
    "invalid_key",
    "unsupported_extension",
    "malformed_event",
    "source_missing",
    "audio_too_large",
    "audio_too_long",
    "empty_audio",
    "corrupt_audio",
    "unsupported_format",
    "undecodable_audio",
]


class ErrorSource(BaseModel):
    """Where the failed input came from."""

    model_config = ConfigDict(frozen=True)

    bucket: str | None = None
    key: str | None = None
    etag: str | None = None
    version_id: str | None = None
    size: int | None = None
    message_id: str | None = None


class ErrorRecord(BaseModel):
    """The JSON document stored at an error key."""

    model_config = ConfigDict(frozen=True)

    code: ErrorCode
    reason: str
    error_type: str
    source: ErrorSource
    tenant: str | None = None
    recording_id: str | None = None
    function: str
    time: datetime = Field(default_factory=lambda: datetime.now(UTC))


def unroutable_record_id(*parts: str | None) -> str:
    """A stable, safe id for a source whose own key cannot be used (sha256 of its parts)."""
    joined = "\x00".join(part or "" for part in parts)
    return hashlib.sha256(joined.encode("utf-8")).hexdigest()[:40]


def error_record_key(record: ErrorRecord) -> str:
    """Routable records go under the tenant; everything else under ``errors/_unroutable/``."""
    if record.tenant is not None and record.recording_id is not None:
        return storage_layout.error_key(record.tenant, record.recording_id)
    source = record.source
    return storage_layout.unroutable_error_key(
        unroutable_record_id(
            source.bucket, source.key, source.etag, source.version_id, source.message_id
        )
    )


def write_error_record(s3: S3Client, bucket: str, record: ErrorRecord) -> str:
    """Store ``record`` in ``bucket`` and return its key."""
    key = error_record_key(record)
    s3.put_object(
        Bucket=bucket,
        Key=key,
        Body=record.model_dump_json(indent=2).encode("utf-8"),
        ContentType="application/json",
    )
    return key
