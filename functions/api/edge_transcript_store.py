"""Offline transcripts from devices, stored once at ``storage_layout.transcript_key``.

A device's outbox re-sends an upload until it sees a 2xx (or 409), so the same upload arrives
again after a lost reply, a crash or a reboot. Rules, in order:

1. The transcript is stored exactly where the batch pipeline stores its own (``.txt``, ``.srt``,
   ``.vtt``, then ``.json`` as the done marker, via ``functions.common.transcript_store``), so
   ``GET /v1/transcriptions/{id}`` and feedback find it like any other. The engine stays as the
   device produced it (``onnxruntime-edge``).
2. The identity of an upload is a SHA-256 over what the device sent (its device id, the transcript,
   ``produced_at`` and ``cloud_error``), kept in the objects' metadata with the time the cloud first
   stored it and the request's ``Idempotency-Key``.
3. Under a transcript id that is already stored: the same upload is a retry and gets the original
   receipt again (same status, same body), whatever its ``Idempotency-Key``; anything else is 409
   and nothing is overwritten — not another upload, not a transcript the cloud made itself. (The
   edge outbox counts a 409 as delivered: the id is taken, and re-sending cannot change that.)
4. The JSON write is conditional (``If-None-Match: *``), so two uploads racing for one id cannot
   both win. The loser re-writes the other formats from the winner's JSON, so the set stays whole.

Idempotency needs no table: the transcript id is the key, and S3's conditional write is the lock.
"""

from __future__ import annotations

import hashlib
import json
import urllib.parse
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from functions.api.problems import Conflict, ServiceUnavailable
from functions.api.schemas import EdgeTranscriptReceipt, EdgeTranscriptUpload
from functions.common.transcript_store import TranscriptAlreadyStoredError, write_transcript
from models.runtime import storage_layout
from models.runtime.transcript import Transcript

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

SOURCE = "edge-upload"
#: S3 allows 2 KB of user metadata per object; the device's error text is kept to this much of it.
MAX_STORED_ERROR_CHARS = 800


@dataclass(frozen=True)
class StoredUpload:
    receipt: EdgeTranscriptReceipt
    replayed: bool  # True when this request repeated an upload that was already stored


def upload_digest(device_id: str, upload: EdgeTranscriptUpload) -> str:
    """What makes two uploads "the same" (rule 2): stable across retries, byte-for-byte."""
    canonical = {
        "device_id": device_id,
        "transcript": upload.transcript.model_dump(mode="json"),
        "produced_at": upload.produced_at.isoformat(),
        "cloud_error": upload.cloud_error,
    }
    return hashlib.sha256(
        json.dumps(canonical, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()


def status_url(transcript_id: str) -> str:
    return f"/v1/transcriptions/{transcript_id}"


def store_edge_transcript(
    s3: S3Client,
    bucket: str,
    *,
    tenant: str,
    device_id: str,
    upload: EdgeTranscriptUpload,
    idempotency_key: str | None,
    now: datetime,
) -> StoredUpload:
    """Store ``upload`` for ``tenant`` unless it is already stored (see the module's rules)."""
    transcript = upload.transcript
    digest = upload_digest(device_id, upload)
    key = storage_layout.transcript_key(tenant, transcript.id, "json")
    existing = _stored_receipt(s3, bucket, key, digest, idempotency_key)
    if existing is not None:
        return StoredUpload(existing, replayed=True)
    metadata = {
        "source": SOURCE,
        "device-id": device_id,
        "produced-at": upload.produced_at.isoformat(),
        "received-at": now.isoformat(),
        "upload-sha256": digest,
        "idempotency-key": idempotency_key or "",
        "cloud-error": _metadata_text(upload.cloud_error or ""),
    }
    try:
        write_transcript(
            s3, bucket, tenant, transcript.id, transcript, metadata=metadata, create_only=True
        )
    except TranscriptAlreadyStoredError:
        # Lost a race for this id (rule 4): settle as a retry, or repair the formats and refuse.
        try:
            existing = _stored_receipt(s3, bucket, key, digest, idempotency_key)
        except Conflict:
            _restore_formats(s3, bucket, tenant, key, transcript.id)
            raise
        if existing is None:
            # The winner vanished between its write and our read (deleted by hand). Not a 409:
            # the outbox would count that as delivered; a 503 makes it send the upload again.
            raise ServiceUnavailable(
                f"transcript {transcript.id!r} changed while it was being stored; send it again"
            ) from None
        return StoredUpload(existing, replayed=True)
    receipt = EdgeTranscriptReceipt(
        transcript_id=transcript.id,
        device_id=device_id,
        produced_at=upload.produced_at,
        received_at=now,
        status_url=status_url(transcript.id),
    )
    return StoredUpload(receipt, replayed=False)


def _stored_receipt(
    s3: S3Client, bucket: str, key: str, digest: str, idempotency_key: str | None
) -> EdgeTranscriptReceipt | None:
    """The original receipt if ``key`` holds this very upload; None if nothing is stored there;
    ``Conflict`` if something else is."""
    try:
        head = s3.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return None
        raise
    metadata = head.get("Metadata", {})
    transcript_id = key.rsplit("/", 1)[-1].removesuffix(".json")
    if metadata.get("source") != SOURCE:
        raise Conflict(
            f"transcript id {transcript_id!r} already names a transcript the cloud made in your "
            "tenant; give the offline transcript a new id"
        )
    if metadata.get("upload-sha256") != digest:
        if idempotency_key and metadata.get("idempotency-key") == idempotency_key:
            raise Conflict(
                f"Idempotency-Key {idempotency_key!r} was already used for transcript "
                f"{transcript_id!r} with different content; a new transcript needs a new id and key"
            )
        raise Conflict(
            f"transcript {transcript_id!r} is already stored with different content (another "
            "transcript, device, produced_at or cloud_error); a new transcript needs a new id"
        )
    return EdgeTranscriptReceipt(
        transcript_id=transcript_id,
        device_id=metadata["device-id"],
        produced_at=datetime.fromisoformat(metadata["produced-at"]),
        received_at=datetime.fromisoformat(metadata["received-at"]),
        status_url=status_url(transcript_id),
    )


def _restore_formats(s3: S3Client, bucket: str, tenant: str, key: str, transcript_id: str) -> None:
    """After losing a race with different content, make ``.txt/.srt/.vtt`` match the winner."""
    try:
        stored = s3.get_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey"):
            return
        raise
    write_transcript(
        s3,
        bucket,
        tenant,
        transcript_id,
        Transcript.model_validate_json(stored["Body"].read()),
        metadata=stored.get("Metadata", {}),
        formats=("txt", "srt", "vtt"),
    )


def _metadata_text(text: str) -> str:
    """Free text as an S3 metadata value: percent-encoded ASCII (no newlines), bounded."""
    encoded = urllib.parse.quote(text, safe=" !#$&'()*+,-./:;=?@[]^_`{|}~")
    if len(encoded) <= MAX_STORED_ERROR_CHARS:
        return encoded
    cut = encoded[:MAX_STORED_ERROR_CHARS]
    escape = cut.rfind("%", len(cut) - 2)  # do not end inside a %XX escape
    return cut[:escape] if escape != -1 else cut
