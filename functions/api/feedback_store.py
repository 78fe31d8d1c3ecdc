"""Feedback records under ``storage_layout.feedback_key``: stored once, whatever the retries.

Idempotency without a table:

- the stored id is derived from the tenant and the client's ``feedback_id`` (or, without one, from
  the transcript id and the corrected text), so two tenants can never collide on an id and the
  same correction always maps to the same id;
- the day folder comes from the client's ``corrected_at`` when given (the edge outbox sends it),
  so a retry days later addresses the same key;
- the write is ``If-None-Match: *``: the first write wins; a retry of the same correction gets the
  stored record back (``duplicate``), a *different* correction under a reused id is a conflict.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from functions.api.problems import Conflict
from functions.api.schemas import FeedbackRecord
from models.runtime import storage_layout

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

#: Fields that make two submissions "the same correction".
_IDENTITY_FIELDS = ("tenant", "transcript_id", "corrected_text", "audio_ref")


def derive_feedback_id(
    tenant: str, client_feedback_id: str | None, transcript_id: str, corrected_text: str
) -> str:
    """The stored id: stable for retries, distinct across tenants, safe as a key component."""
    basis = client_feedback_id if client_feedback_id else f"{transcript_id}\x00{corrected_text}"
    digest = hashlib.sha256(f"{tenant}\x00{basis}".encode()).hexdigest()
    return f"fb-{digest[:40]}"


def store_feedback(
    s3: S3Client, bucket: str, record: FeedbackRecord, day: datetime
) -> tuple[FeedbackRecord, bool]:
    """Store ``record`` unless it is already stored; returns (stored record, was_duplicate)."""
    key = storage_layout.feedback_key(record.feedback_id, day)
    try:
        s3.put_object(
            Bucket=bucket,
            Key=key,
            Body=record.model_dump_json(indent=2).encode(),
            ContentType="application/json",
            IfNoneMatch="*",
        )
        return record, False
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("PreconditionFailed", "412"):
            raise
    existing = FeedbackRecord.model_validate_json(
        s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    )
    if any(getattr(existing, name) != getattr(record, name) for name in _IDENTITY_FIELDS):
        raise Conflict(
            f"feedback id {record.client_feedback_id or record.feedback_id!r} was already used for "
            "a different correction; send a new feedback_id"
        )
    return existing, True
