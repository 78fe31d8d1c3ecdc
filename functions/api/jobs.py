"""Transcription jobs: long recordings handed to the batch pipeline, and their status.

A job is created when a client announces a long recording (it gets a pre-signed PUT URL) or sends a
clip longer than the synchronous limit (the API stores it). Either way the audio lands at
``storage_layout.recording_key(tenant, job_id, ext)``, the bucket notification queues it, and the
batch function writes ``transcript_key`` (success) or ``error_key`` (failure) in the transcripts
bucket. The job's status is read from those objects — the batch function needs no API-specific
bookkeeping — and the jobs table only records that the job exists and whose it is.

Isolation: every object read here is addressed under the *caller's* tenant, and a job item of
another tenant is treated exactly like a missing one. So a guessed id of another tenant's job is a
plain 404, indistinguishable from an id that never existed.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal

from botocore.exceptions import ClientError
from pydantic import BaseModel, ValidationError

from functions.api.schemas import JobError, TranscriptionStatus
from models.runtime import storage_layout
from models.runtime.transcript import Transcript

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client

#: Job items expire (DynamoDB TTL) after this long; results stay in the transcripts bucket.
JOB_RETENTION = timedelta(days=30)


class JobRecord(BaseModel):
    job_id: str
    tenant: str
    created_at: datetime
    created_by: str
    format: str
    recording_key: str
    source: Literal["upload_url", "request_body"]


def new_job_id() -> str:
    """A fresh id, valid as a recording id (hex, no separators)."""
    return uuid.uuid4().hex


class JobStore:
    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._client = client
        self._table = table

    def create(self, job: JobRecord) -> None:
        expires = int((job.created_at + JOB_RETENTION).timestamp())
        self._client.put_item(
            TableName=self._table,
            Item={
                "job_id": {"S": job.job_id},
                "tenant": {"S": job.tenant},
                "document": {"S": job.model_dump_json()},
                "expires_at": {"N": str(expires)},
            },
            ConditionExpression="attribute_not_exists(job_id)",
        )

    def get_for_tenant(self, job_id: str, tenant: str) -> JobRecord | None:
        """The job if it exists and belongs to ``tenant``; otherwise ``None`` (never "forbidden")."""
        item = self._client.get_item(
            TableName=self._table, Key={"job_id": {"S": job_id}}, ConsistentRead=True
        ).get("Item")
        if not item or item.get("tenant", {}).get("S") != tenant or "document" not in item:
            return None
        return JobRecord.model_validate_json(item["document"]["S"])


def transcription_status(
    s3: S3Client,
    *,
    transcripts_bucket: str,
    recordings_bucket: str,
    tenant: str,
    transcription_id: str,
    job: JobRecord | None,
) -> TranscriptionStatus | None:
    """The status of ``transcription_id`` for ``tenant``, or ``None`` when there is nothing to show."""
    body = read_object(
        s3, transcripts_bucket, storage_layout.transcript_key(tenant, transcription_id)
    )
    if body is not None:
        return TranscriptionStatus(
            id=transcription_id, status="completed", transcript=Transcript.model_validate_json(body)
        )
    body = read_object(s3, transcripts_bucket, storage_layout.error_key(tenant, transcription_id))
    if body is not None:
        return TranscriptionStatus(id=transcription_id, status="failed", error=_job_error(body))
    if job is None:
        return None
    if _exists(s3, recordings_bucket, job.recording_key):
        return TranscriptionStatus(id=transcription_id, status="processing")
    return TranscriptionStatus(id=transcription_id, status="awaiting_upload")


def _job_error(body: bytes) -> JobError:
    """The error record's code and reason (written by the batch function, read leniently)."""
    try:
        record = _ErrorRecordView.model_validate_json(body)
    except ValidationError:
        return JobError(
            code="unknown", reason="the transcription failed; the error record is unreadable"
        )
    return JobError(code=record.code, reason=record.reason)


class _ErrorRecordView(BaseModel):
    code: str
    reason: str


def read_object(s3: S3Client, bucket: str, key: str) -> bytes | None:
    try:
        return s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            return None
        raise


def _exists(s3: S3Client, bucket: str, key: str) -> bool:
    try:
        s3.head_object(Bucket=bucket, Key=key)
        return True
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
            return False
        raise
