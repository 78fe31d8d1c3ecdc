"""Feedback ingestion against the real moto server: one assessment per record, whatever is in the
bucket and however many runs overlap."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from functions.learning import quality
from functions.learning.ingest import MAX_RECORD_BYTES, IngestOutcome, ingest
from models.runtime import storage_layout
from tests.functions.batch_stack import BatchStack
from tests.functions.learning.feedback_data import (
    HONEST_CORRECTIONS,
    RANDOM_TEXTS,
    T0,
    feedback_record,
    honest_records,
    put_feedback,
    stored_assessments,
    versions,
)

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def _ingest(stack: BatchStack) -> IngestOutcome:
    return ingest(stack.s3, stack.names.feedback_bucket, now=NOW)


def test_every_record_gets_one_assessment_recording_its_verdict(batch_stack: BatchStack) -> None:
    bucket = batch_stack.names.feedback_bucket
    good = feedback_record(1)
    poisoned = feedback_record(2, corrected=RANDOM_TEXTS[2])
    no_audio = feedback_record(3, audio=False, original=HONEST_CORRECTIONS[1][0],
                               corrected=HONEST_CORRECTIONS[1][1])  # fmt: skip
    confirmed = feedback_record(4, original="stop the warfarin", corrected="Stop the warfarin.")
    for record in (good, poisoned, no_audio, confirmed):
        put_feedback(batch_stack.s3, bucket, record)

    outcome = _ingest(batch_stack)

    report = outcome.report
    assert (report.scanned, report.assessed, report.accepted, report.rejected) == (4, 4, 3, 1)
    assert report.trainable == 2
    assert report.by_route == {"finetune": 2, "distill": 1}
    assert report.by_reason == {quality.TOO_MANY_WORDS_CHANGED: 1}
    stored = stored_assessments(batch_stack.s3, bucket)
    assert set(stored) == {"fb-0001", "fb-0002", "fb-0003", "fb-0004"}
    assert stored["fb-0001"].accepted
    assert stored["fb-0001"].trainable
    assert stored["fb-0001"].model == good.model
    assert stored["fb-0001"].tenant == "clinic-a"
    assert stored["fb-0002"].reason is not None
    assert "words changed" in stored["fb-0002"].reason
    assert not stored["fb-0003"].trainable
    assert stored["fb-0003"].accepted
    assert stored["fb-0004"].route == "distill"
    assert {a.feedback_id for a in outcome.assessments} == set(stored)


def test_malformed_records_are_rejected_with_a_reason_and_do_not_block_the_others(
    batch_stack: BatchStack,
) -> None:
    s3, bucket = batch_stack.s3, batch_stack.names.feedback_bucket
    day = "feedback/2026/11/25"
    s3.put_object(Bucket=bucket, Key=f"{day}/fb-notjson.json", Body=b"\x00\xffnot json{")
    s3.put_object(Bucket=bucket, Key=f"{day}/fb-list.json", Body=b"[1, 2, 3]")
    s3.put_object(
        Bucket=bucket, Key=f"{day}/fb-partial.json", Body=b'{"feedback_id": "fb-partial"}'
    )
    impostor = feedback_record(7, feedback_id="fb-victim")
    s3.put_object(Bucket=bucket, Key=f"{day}/fb-impostor.json", Body=impostor.model_dump_json())
    s3.put_object(Bucket=bucket, Key=f"{day}/fb-huge.json", Body=b" " * (MAX_RECORD_BYTES + 1))
    s3.put_object(Bucket=bucket, Key="feedback/../../models/x.json", Body=b"{}")
    s3.put_object(Bucket=bucket, Key="feedback/evil name;rm -rf.json", Body=b"{}")
    put_feedback(s3, bucket, feedback_record(1))

    outcome = _ingest(batch_stack)

    stored = stored_assessments(s3, bucket)
    assert len(stored) == 8
    assert stored["fb-0001"].accepted
    malformed = [a for a in stored.values() if a.feedback_id != "fb-0001"]
    assert all(quality.guardrail_of(a.reason) == quality.MALFORMED for a in malformed)
    assert not any(a.accepted or a.trainable for a in malformed)
    reasons = {a.feedback_id: a.reason or "" for a in malformed}
    assert "Field required" in reasons["fb-partial"]
    assert "not json" not in reasons["fb-list"]
    assert reasons["fb-list"] != reasons["fb-notjson"]
    assert "fb-victim" in reasons["fb-impostor"]
    assert "bytes" in reasons["fb-huge"]
    assert "fb-victim" not in stored  # the impostor cannot claim another record's assessment
    stand_ins = [i for i in stored if i.startswith("key-")]
    assert len(stand_ins) == 2
    assert outcome.report.by_reason == {quality.MALFORMED: 7}


def test_audio_attached_under_feedback_is_ignored_and_no_audio_is_ever_copied(
    batch_stack: BatchStack,
) -> None:
    s3, names = batch_stack.s3, batch_stack.names
    record = feedback_record(1)
    put_feedback(s3, names.feedback_bucket, record)
    attached = storage_layout.feedback_audio_key("fb-0001", record.received_at, "wav")
    s3.put_object(Bucket=names.feedback_bucket, Key=attached, Body=b"RIFF....WAVE")
    before = s3.list_objects_v2(Bucket=names.recordings_bucket).get("KeyCount", 0)

    outcome = _ingest(batch_stack)

    assert outcome.report.ignored == 1
    assert outcome.report.scanned == 1
    (assessment,) = outcome.assessments
    assert assessment.audio_ref == record.audio_ref  # referenced by key
    assert s3.list_objects_v2(Bucket=names.recordings_bucket).get("KeyCount", 0) == before
    feedback_keys = {
        item["Key"] for item in s3.list_objects_v2(Bucket=names.feedback_bucket)["Contents"]
    }
    assert not any(key.endswith(".wav") and key != attached for key in feedback_keys)


def test_a_second_run_skips_assessed_records_and_never_rewrites_a_verdict(
    batch_stack: BatchStack,
) -> None:
    s3, bucket = batch_stack.s3, batch_stack.names.feedback_bucket
    for record in honest_records(3):
        put_feedback(s3, bucket, record)
    _ingest(batch_stack)
    put_feedback(s3, bucket, feedback_record(9, corrected=RANDOM_TEXTS[0]))

    second = _ingest(batch_stack)

    assert second.report.already_assessed == 3
    assert second.report.assessed == 1
    assert second.report.rejected == 1
    assert len(second.assessments) == 4
    for feedback_id in ("fb-0000", "fb-0001", "fb-0002", "fb-0009"):
        assert versions(s3, bucket, storage_layout.assessment_key(feedback_id)) == 1


def test_the_same_correction_for_the_same_audio_or_transcript_is_accepted_once(
    batch_stack: BatchStack,
) -> None:
    s3, bucket = batch_stack.s3, batch_stack.names.feedback_bucket
    first = feedback_record(1)
    # Same recording, same text up to case and punctuation, sent again under a new id.
    same_audio = feedback_record(2, audio_ref=first.audio_ref, transcript_id="rec-other",
                                 corrected=first.corrected_text.upper() + "!")  # fmt: skip
    # Same transcript, no audio this time.
    same_transcript = feedback_record(3, transcript_id=first.transcript_id, audio=False)
    # Another tenant saying the same thing about its own recording: not a duplicate.
    other_tenant = feedback_record(4, tenant="clinic-b", transcript_id=first.transcript_id)
    # Same recording, a different correction: not a duplicate either.
    different = feedback_record(
        5, audio_ref=first.audio_ref, original=HONEST_CORRECTIONS[2][0],
        corrected=HONEST_CORRECTIONS[2][1],
    )  # fmt: skip
    for record in (same_transcript, same_audio, first, other_tenant, different):
        put_feedback(s3, bucket, record)

    _ingest(batch_stack)

    stored = stored_assessments(s3, bucket)
    assert stored["fb-0001"].accepted
    for duplicate in ("fb-0002", "fb-0003"):
        assert not stored[duplicate].accepted
        reason = stored[duplicate].reason or ""
        assert quality.guardrail_of(reason) == quality.DUPLICATE
        assert "duplicate of fb-0001" in reason
    assert stored["fb-0004"].accepted
    assert stored["fb-0005"].accepted


def test_a_duplicate_of_a_correction_accepted_in_an_earlier_run_is_rejected(
    batch_stack: BatchStack,
) -> None:
    s3, bucket = batch_stack.s3, batch_stack.names.feedback_bucket
    first = feedback_record(1)
    put_feedback(s3, bucket, first)
    _ingest(batch_stack)
    later = feedback_record(2, transcript_id=first.transcript_id,
                            received_at=T0 + timedelta(days=1))  # fmt: skip
    put_feedback(s3, bucket, later)

    outcome = _ingest(batch_stack)

    assert outcome.report.by_reason == {quality.DUPLICATE: 1}
    assert "duplicate of fb-0001" in (stored_assessments(s3, bucket)["fb-0002"].reason or "")


def test_overlapping_runs_write_exactly_one_assessment_per_record(batch_stack: BatchStack) -> None:
    s3, bucket = batch_stack.s3, batch_stack.names.feedback_bucket
    records = honest_records(12) + [
        feedback_record(50 + i, corrected=t) for i, t in enumerate(RANDOM_TEXTS)
    ]
    for record in records:
        put_feedback(s3, bucket, record)
    outcomes: list[IngestOutcome] = []
    barrier = threading.Barrier(2)

    def run() -> None:
        barrier.wait()
        outcomes.append(_ingest(batch_stack))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(outcomes) == 2
    for record in records:
        assert versions(s3, bucket, storage_layout.assessment_key(record.feedback_id)) == 1
    written = sum(outcome.report.assessed for outcome in outcomes)
    skipped = sum(
        outcome.report.assessed_elsewhere + outcome.report.already_assessed for outcome in outcomes
    )
    assert written == len(records)
    assert written + skipped == 2 * len(records)
    for outcome in outcomes:  # each run still sees every verdict
        assert {a.feedback_id for a in outcome.assessments} == {r.feedback_id for r in records}


def test_listing_is_paginated_past_a_thousand_objects(batch_stack: BatchStack) -> None:
    s3, bucket = batch_stack.s3, batch_stack.names.feedback_bucket
    record = feedback_record(1)
    put_feedback(s3, bucket, record)
    day = record.received_at
    for number in range(1001):  # the day before: these keys sort first, the record is on page 2
        key = storage_layout.feedback_audio_key(f"fb-a{number:04d}", day - timedelta(days=1), "wav")
        s3.put_object(Bucket=bucket, Key=key, Body=b"")

    outcome = _ingest(batch_stack)

    assert outcome.report.ignored == 1001
    assert outcome.report.scanned == 1
    assert outcome.report.accepted == 1
