"""Feedback ingestion: every record under ``feedback/`` gets exactly one assessment, with a reason.

One run:

1. list ``feedback/`` (paginated) and ``assessments/``; records that already have an assessment are
   skipped, objects that are not ``.json`` records (audio attached to feedback) are ignored;
2. read the rest (in parallel, at most ``MAX_RECORD_BYTES`` each). A record that is not valid JSON,
   is not a ``FeedbackRecord``, or whose ``feedback_id`` is not the one its key names is *rejected*
   with the reason, never skipped and never allowed to stop the run;
3. assess the readable ones (``functions.learning.quality.assess``) in a fixed order (oldest first,
   then by id), then reject duplicates: the same corrected text (normalized) from the same tenant
   for the same audio, or for the same transcript, as an earlier accepted correction is rejected
   as ``"duplicate: duplicate of <feedback_id> ..."``;
4. write each assessment at ``storage_layout.assessment_key`` with ``If-None-Match: *``: when two
   runs overlap, the first write wins and the other run counts the record as assessed elsewhere, so
   each record still ends with one assessment.

Audio is never copied: an assessment (and later a training example) references the recording by
its key in the recordings bucket.

Objects under ``feedback/`` whose key is not a valid feedback key (hostile names) are still
assessed, under a stand-in id derived from the key (``key-<sha256>``), so they appear as rejected
rather than vanish.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Final, TypeVar

from botocore.exceptions import ClientError
from pydantic import BaseModel, Field, ValidationError

from functions.api.schemas import FeedbackRecord
from functions.common.s3_errors import is_missing, is_precondition_failed
from functions.learning import quality
from functions.learning.quality import DEFAULT_POLICY, QualityPolicy
from functions.learning.records import Assessment
from models.runtime import storage_layout
from models.runtime.vocabulary import normalize_text

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

logger = logging.getLogger(__name__)

FEEDBACK_PREFIX: Final = "feedback/"
#: A stored record holds two texts of at most 20 000 characters (the API's limit) plus a few ids;
#: anything larger was not written by the API and is not read into memory.
MAX_RECORD_BYTES: Final = 256 * 1024
#: Parallel S3 reads and writes (boto3 clients are thread-safe; the work is network-bound).
IO_THREADS: Final = 8


_T = TypeVar("_T")
_R = TypeVar("_R")


class IngestReport(BaseModel):
    """What one run did, in counts (``by_reason`` counts rejections by guardrail name)."""

    scanned: int = Field(default=0, description="feedback records (.json) under feedback/")
    ignored: int = Field(default=0, description="other objects under feedback/ (attached audio)")
    already_assessed: int = 0
    assessed: int = Field(default=0, description="assessments this run wrote")
    assessed_elsewhere: int = Field(default=0, description="a concurrent run wrote them first")
    vanished: int = Field(default=0, description="deleted between listing and reading")
    accepted: int = 0
    rejected: int = 0
    trainable: int = 0
    by_route: dict[str, int] = Field(default_factory=dict)
    by_reason: dict[str, int] = Field(default_factory=dict)
    unreadable_assessments: int = Field(
        default=0, description="stored assessments that do not parse"
    )


@dataclass(frozen=True)
class IngestOutcome:
    report: IngestReport
    #: Every assessment in the bucket after this run (earlier ones and this run's).
    assessments: list[Assessment]


@dataclass(frozen=True)
class _FeedbackObject:
    key: str
    feedback_id: str
    last_modified: datetime


class AssessmentStore:
    """Assessments in the feedback bucket, one per feedback id, written once."""

    def __init__(self, s3: S3Client, bucket: str) -> None:
        self._s3 = s3
        self._bucket = bucket

    def assessed_ids(self) -> set[str]:
        ids: set[str] = set()
        prefix = storage_layout.ASSESSMENTS_PREFIX
        for page in self._s3.get_paginator("list_objects_v2").paginate(
            Bucket=self._bucket, Prefix=prefix, Delimiter="/"
        ):
            for item in page.get("Contents", []):
                name = item["Key"][len(prefix) :]
                if name.endswith(".json"):
                    ids.add(name[: -len(".json")])
        return ids

    def read(self, feedback_id: str) -> Assessment | None:
        """The stored assessment; ``None`` when there is none or it does not parse."""
        try:
            response = self._s3.get_object(
                Bucket=self._bucket, Key=storage_layout.assessment_key(feedback_id)
            )
        except ClientError as exc:
            if is_missing(exc):
                return None
            raise
        try:
            return Assessment.model_validate_json(response["Body"].read())
        except ValidationError:
            logger.warning("unreadable assessment", extra={"feedback_id": feedback_id})
            return None

    def load_all(self, ids: Iterable[str] | None = None) -> tuple[list[Assessment], int]:
        """Every readable assessment (of ``ids``, default all), and how many could not be read."""
        ids = sorted(self.assessed_ids() if ids is None else ids)
        found = _parallel(self.read, ids)
        assessments = [assessment for assessment in found if assessment is not None]
        return assessments, len(ids) - len(assessments)

    def create(self, assessment: Assessment) -> bool:
        """Store ``assessment`` unless one exists for the id; False when another run was first."""
        try:
            self._s3.put_object(
                Bucket=self._bucket,
                Key=storage_layout.assessment_key(assessment.feedback_id),
                Body=assessment.model_dump_json(indent=2).encode(),
                ContentType="application/json",
                IfNoneMatch="*",
            )
        except ClientError as exc:
            if is_precondition_failed(exc):
                return False
            raise
        return True


def ingest(
    s3: S3Client, feedback_bucket: str, *, now: datetime, policy: QualityPolicy = DEFAULT_POLICY
) -> IngestOutcome:
    """Assess every feedback record that has no assessment yet (steps in the module docstring)."""
    store = AssessmentStore(s3, feedback_bucket)
    report = IngestReport()
    objects = list(_list_feedback(s3, feedback_bucket, report))
    existing_ids = store.assessed_ids()
    pending = [obj for obj in objects if obj.feedback_id not in existing_ids]
    report.already_assessed = len(objects) - len(pending)
    existing, report.unreadable_assessments = store.load_all(existing_ids)

    read = _parallel(lambda obj: _read_record(s3, feedback_bucket, obj, now), pending)
    fresh: list[Assessment] = []
    records: list[FeedbackRecord] = []
    for outcome in read:
        if outcome is None:
            report.vanished += 1
        elif isinstance(outcome, Assessment):
            fresh.append(outcome)
        else:
            records.append(outcome)
    fresh += _assess_without_duplicates(records, existing, policy, now)

    written = _parallel(store.create, fresh)
    stored = list(existing)
    for assessment, created in zip(fresh, written, strict=True):
        if created:
            report.assessed += 1
            stored.append(assessment)
            _count(report, assessment)
            continue
        report.assessed_elsewhere += 1
        theirs = store.read(assessment.feedback_id)
        if theirs is not None:
            stored.append(theirs)
    logger.info("feedback ingested", extra={"report": report.model_dump()})
    return IngestOutcome(report=report, assessments=stored)


def _list_feedback(s3: S3Client, bucket: str, report: IngestReport) -> Iterator[_FeedbackObject]:
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=FEEDBACK_PREFIX):
        for item in page.get("Contents", []):
            key = item["Key"]
            if not key.endswith(".json"):
                report.ignored += 1
                continue
            report.scanned += 1
            yield _FeedbackObject(key, _feedback_id_of(key), item["LastModified"])


def _feedback_id_of(key: str) -> str:
    """The id a feedback key names, or a stand-in derived from a key that names none safely."""
    parts = key.split("/")
    stem = parts[-1][: -len(".json")]
    if len(parts) == 5 and all(part.isdigit() for part in parts[1:4]):
        try:
            return storage_layout.validate_id(stem, "feedback id")
        except storage_layout.InvalidKeyError:
            pass
    return f"key-{hashlib.sha256(key.encode()).hexdigest()[:40]}"


def _read_record(
    s3: S3Client, bucket: str, obj: _FeedbackObject, now: datetime
) -> FeedbackRecord | Assessment | None:
    """The record, a rejection saying why it is unusable, or ``None`` when it was deleted."""

    def reject(detail: str) -> Assessment:
        return quality.rejected(
            feedback_id=obj.feedback_id,
            reason=f"{quality.MALFORMED}: {detail}",
            received_at=obj.last_modified,
            now=now,
        )

    if obj.feedback_id.startswith("key-"):
        return reject(f"{obj.key!r} is not a feedback key (feedback/YYYY/MM/DD/<id>.json)")
    try:
        response = s3.get_object(Bucket=bucket, Key=obj.key)
    except ClientError as exc:
        if is_missing(exc):
            return None
        raise
    body = response["Body"]
    try:
        size = int(response.get("ContentLength", 0))
        if size > MAX_RECORD_BYTES:
            return reject(f"{size} bytes (limit {MAX_RECORD_BYTES})")
        data = body.read(MAX_RECORD_BYTES + 1)
    finally:
        body.close()
    if len(data) > MAX_RECORD_BYTES:
        return reject(f"more than {MAX_RECORD_BYTES} bytes")
    try:
        record = FeedbackRecord.model_validate_json(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "record"
        return reject(f"{where}: {first['msg']}")
    if record.feedback_id != obj.feedback_id:
        return reject(
            f"the record says feedback_id {record.feedback_id[:80]!r} but is stored as "
            f"{obj.feedback_id!r}"
        )
    return record


def _assess_without_duplicates(
    records: list[FeedbackRecord],
    existing: Iterable[Assessment],
    policy: QualityPolicy,
    now: datetime,
) -> list[Assessment]:
    """Assess oldest first; an accepted correction already accepted once becomes a duplicate."""
    first_seen: dict[tuple[str, ...], str] = {}
    for earlier in sorted(existing, key=lambda a: (a.received_at, a.feedback_id)):
        if earlier.accepted:
            identities = _identities(
                earlier.tenant, earlier.transcript_id, earlier.audio_ref, earlier.corrected_text
            )
            for identity in identities:
                first_seen.setdefault(identity, earlier.feedback_id)
    assessments = []
    for record in sorted(records, key=lambda r: (r.received_at, r.feedback_id)):
        assessment = quality.assess(record, policy, now)
        if assessment.accepted:
            identities = _identities(
                record.tenant, record.transcript_id, record.audio_ref, record.corrected_text
            )
            original = next((first_seen[i] for i in identities if i in first_seen), None)
            if original is not None:
                assessment = quality.rejected(
                    feedback_id=record.feedback_id,
                    reason=f"{quality.DUPLICATE}: duplicate of {original} (same tenant, same "
                    "corrected text, same audio or transcript)",
                    received_at=record.received_at,
                    now=now,
                    record=record,
                    cer=assessment.cer,
                    words_changed=assessment.words_changed,
                )
            else:
                for identity in identities:
                    first_seen[identity] = record.feedback_id
        assessments.append(assessment)
    return assessments


def _identities(
    tenant: str, transcript_id: str, audio_ref: str | None, corrected_text: str
) -> list[tuple[str, ...]]:
    text = normalize_text(corrected_text)
    identities: list[tuple[str, ...]] = [(tenant, "transcript", transcript_id, text)]
    if audio_ref is not None:
        identities.append((tenant, "audio", audio_ref, text))
    return identities


def _count(report: IngestReport, assessment: Assessment) -> None:
    if assessment.accepted:
        report.accepted += 1
        report.trainable += assessment.trainable
        if assessment.route is not None:
            report.by_route = dict(Counter(report.by_route) + Counter([assessment.route]))
        return
    report.rejected += 1
    guardrail = quality.guardrail_of(assessment.reason) or "unknown"
    report.by_reason = dict(Counter(report.by_reason) + Counter([guardrail]))


def _parallel(function: Callable[[_T], _R], items: list[_T]) -> list[_R]:
    if len(items) <= 1:
        return [function(item) for item in items]
    with ThreadPoolExecutor(max_workers=IO_THREADS) as pool:
        return list(pool.map(function, items))
