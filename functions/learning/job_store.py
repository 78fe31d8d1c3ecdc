"""Training jobs as S3 objects: ``training/jobs/<job_id>/job.json`` in the models bucket.

No table: a job folder holds the job record beside its spec and data manifests, so one listing shows
everything about a job, and the training process (a local process or a SageMaker container) needs
only S3 access to report progress.

Concurrency rules:

- ``create`` writes with ``If-None-Match: *``: the job id names the trigger window, so two trigger
  runs in the same window create one job and the loser learns it lost (``False``);
- ``update`` reads the record with its ETag and writes with ``If-Match``; when someone else wrote in
  between it re-reads and retries (``UPDATE_ATTEMPTS``), so concurrent updates never lose one another;
- a caller that acts on a status it read passes ``expected_status``: if the job moved on meanwhile
  (the training process reported ``trained`` while the trigger was about to mark it ``failed``), the
  update raises ``JobStatusConflictError`` instead of overwriting the newer truth;
- a job in a final status (``FINAL_STATUSES``) never changes again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final

from botocore.exceptions import ClientError
from pydantic import ValidationError

from functions.common.s3_errors import is_missing, is_precondition_failed
from functions.learning.records import FINAL_STATUSES, JobRecord, JobStatus
from models.runtime import storage_layout
from models.runtime.transcript import ModelRef

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

JOB_FILE: Final = "job.json"
UPDATE_ATTEMPTS: Final = 5


class JobStoreError(Exception):
    """Base class; ``str()`` names the job and what to do."""


class JobNotFoundError(JobStoreError, LookupError):
    """No ``job.json`` for the job id."""


class JobStatusConflictError(JobStoreError):
    """The job is not in the status the caller expected (or has already ended)."""

    def __init__(self, message: str, *, current: JobRecord) -> None:
        super().__init__(message)
        self.current = current


class JobUpdateConflictError(JobStoreError):
    """Others kept changing the job while this update retried; nothing was written."""


class CorruptJobRecordError(JobStoreError):
    """``job.json`` exists but is not a ``JobRecord``."""


def _utc_now() -> datetime:
    return datetime.now(UTC)


class JobStore:
    """Job records (and the other files of a job folder) in the models bucket."""

    def __init__(
        self, s3: S3Client, bucket: str, *, clock: Callable[[], datetime] = _utc_now
    ) -> None:
        self._s3 = s3
        self._bucket = bucket
        self._clock = clock

    @property
    def bucket(self) -> str:
        return self._bucket

    def create(self, record: JobRecord) -> bool:
        """Store a new job; ``False`` (and nothing written) when the job already exists."""
        return self.put_file(
            record.job_id, JOB_FILE, record.model_dump_json(indent=2).encode(), create_only=True
        )

    def get(self, job_id: str) -> tuple[JobRecord, str] | None:
        """The job and the ETag a conditional update must match, or ``None``."""
        try:
            response = self._s3.get_object(
                Bucket=self._bucket, Key=storage_layout.training_job_key(job_id, JOB_FILE)
            )
        except ClientError as exc:
            if is_missing(exc):
                return None
            raise
        try:
            record = JobRecord.model_validate_json(response["Body"].read())
        except ValidationError as exc:
            raise CorruptJobRecordError(
                f"{storage_layout.training_job_key(job_id, JOB_FILE)} is not a job record: {exc}"
            ) from exc
        return record, response["ETag"].strip('"')

    def update(
        self,
        job_id: str,
        status: JobStatus,
        *,
        detail: str | None = None,
        candidate: ModelRef | None = None,
        runner: str | None = None,
        expected_status: JobStatus | None = None,
    ) -> JobRecord:
        """Move the job to ``status``; ``None`` arguments keep the stored value."""
        for _ in range(UPDATE_ATTEMPTS):
            found = self.get(job_id)
            if found is None:
                raise JobNotFoundError(f"no training job {job_id!r} (no {JOB_FILE})")
            current, etag = found
            if expected_status is not None and current.status != expected_status:
                raise JobStatusConflictError(
                    f"job {job_id} is {current.status!r}, not {expected_status!r}; "
                    f"not moving it to {status!r}",
                    current=current,
                )
            if current.status in FINAL_STATUSES:
                raise JobStatusConflictError(
                    f"job {job_id} already ended ({current.status!r}); it cannot become {status!r}",
                    current=current,
                )
            changes: dict[str, object] = {"status": status, "updated_at": self._clock()}
            if detail is not None:
                changes["detail"] = detail
            if candidate is not None:
                changes["candidate"] = candidate
            if runner is not None:
                changes["runner"] = runner
            updated = current.model_copy(update=changes)
            if self._replace(updated, etag):
                return updated
        raise JobUpdateConflictError(
            f"job {job_id} changed {UPDATE_ATTEMPTS} times while moving it to {status!r}; "
            "read its status and try again"
        )

    def job_ids(self) -> list[str]:
        """Every job folder's id, newest window first (ids are ``retrain-<window>``)."""
        prefix = storage_layout.TRAINING_JOBS_PREFIX
        ids: list[str] = []
        for page in self._s3.get_paginator("list_objects_v2").paginate(
            Bucket=self._bucket, Prefix=prefix, Delimiter="/"
        ):
            for common in page.get("CommonPrefixes", []):
                job_id = common["Prefix"][len(prefix) :].rstrip("/")
                try:
                    ids.append(storage_layout.validate_id(job_id, "training job id"))
                except storage_layout.InvalidKeyError:
                    continue  # a folder nobody of ours created; it cannot hold a job record
        return sorted(ids, reverse=True)

    def list_jobs(self, limit: int | None = 20) -> list[JobRecord]:
        """Job records, newest first (folders without a ``job.json`` are skipped)."""
        jobs: list[JobRecord] = []
        for record in self._records():
            jobs.append(record)
            if limit is not None and len(jobs) >= limit:
                break
        return sorted(jobs, key=lambda job: (job.created_at, job.job_id), reverse=True)

    def active(self) -> list[JobRecord]:
        """Jobs that have not ended (status not in ``FINAL_STATUSES``), newest first."""
        return [job for job in self.list_jobs(limit=None) if job.status not in FINAL_STATUSES]

    def put_file(self, job_id: str, filename: str, body: bytes, *, create_only: bool) -> bool:
        """Write one file of the job folder; with ``create_only``, ``False`` if it exists."""
        condition = {"IfNoneMatch": "*"} if create_only else {}
        content_type = "application/json" if filename.endswith(".json") else "application/x-ndjson"
        if filename.endswith((".log", ".md")):
            content_type = "text/plain; charset=utf-8"
        try:
            self._s3.put_object(
                Bucket=self._bucket,
                Key=storage_layout.training_job_key(job_id, filename),
                Body=body,
                ContentType=content_type,
                **condition,  # type: ignore[arg-type]
            )
        except ClientError as exc:
            if create_only and is_precondition_failed(exc):
                return False
            raise
        return True

    def read_file(self, job_id: str, filename: str) -> bytes | None:
        try:
            response = self._s3.get_object(
                Bucket=self._bucket, Key=storage_layout.training_job_key(job_id, filename)
            )
        except ClientError as exc:
            if is_missing(exc):
                return None
            raise
        data: bytes = response["Body"].read()
        return data

    def _records(self) -> Iterator[JobRecord]:
        for job_id in self.job_ids():
            found = self.get(job_id)
            if found is not None:
                yield found[0]

    def _replace(self, record: JobRecord, etag: str) -> bool:
        try:
            self._s3.put_object(
                Bucket=self._bucket,
                Key=storage_layout.training_job_key(record.job_id, JOB_FILE),
                Body=record.model_dump_json(indent=2).encode(),
                ContentType="application/json",
                IfMatch=f'"{etag}"',
            )
        except ClientError as exc:
            if is_precondition_failed(exc):
                return False
            raise
        return True
