"""Feedback records as the API stores them, and corrections with known verdicts, for the loop tests.

``HONEST_CORRECTIONS`` pairs what the released edge model really transcribed for clips of
``edgescribe/samples/loop`` (drug names it never heard; recorded once, so the quality tests need no
model) with what was said: the corrections a real user would send. ``RANDOM_TEXTS`` are what a
poisoning or careless user sends instead.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from functions.api.schemas import FeedbackRecord
from functions.distribution.channels import ChannelChange, ChannelState, ChannelStore
from functions.learning.records import Assessment
from models.runtime import storage_layout
from models.runtime.transcript import ModelRef

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from tests.functions.batch_stack import BatchStack

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
EDGE_V1 = ModelRef(name="edgescribe-edge", version=1)

#: (released model's transcript, the user's correction).
HONEST_CORRECTIONS: tuple[tuple[str, str], ...] = (
    ("the pacsin paght som mat ti sean qwice an day", "the patient takes amoxicillin twice a day"),
    ("the pacio pacht nhe forenm qicei day", "the patient takes metformin twice a day"),
    ("the pasin tight four harin tice in da", "the patient takes warfarin twice a day"),
    ("plese tree fol a prein e sen trescriethon", "please refill the prednisone prescription"),
    ("phee tree fol the lice in a proal poscrcchon", "please refill the lisinopril prescription"),
    ("shour wor for rin ten ne in preanso night", "start warfarin ten milligrams tonight"),
    ("shot to ore for in be for the sho trye", "stop the warfarin before the surgery"),
    ("the patient takes a mocks a sillin", "the patient takes amoxicillin"),
)

#: Every clip of ``edgescribe/samples/loop/corrections.jsonl``: (released model's transcript, text).
#: Two of the 32 change too many words for the guardrail (a known, accepted cost of it).
LOOP_CLIP_CORRECTIONS: tuple[tuple[str, str], ...] = (
    ("the pacsin paght som mat ti sean qwice an day", "the patient takes amoxicillin twice a day"),
    ("the pacion teght fie yo prason qicei day", "the patient takes ibuprofen twice a day"),
    ("the pacio pacht nhe forenm qicei day", "the patient takes metformin twice a day"),
    ("the pacon pah qaceen a prol wace a day", "the patient takes lisinopril twice a day"),
    ("the pason pah sia las saen pucei day", "the patient takes atorvastatin twice a day"),
    ("the pacin pagh son me preol qlaceaday", "the patient takes omeprazole twice a day"),
    ("the pa io paght trone tison qice an day", "the patient takes prednisone twice a day"),
    ("the pasin tight four harin tice in da", "the patient takes warfarin twice a day"),
    ("plee treee fol the anmoth tisse in prs prthon", "please refill the amoxicillin prescription"),
    ("plee tree foltye ie you prestin trostrectwon", "please refill the ibuprofen prescription"),
    ("plese tree folth esfor in troscrcthin", "please refill the metformin prescription"),
    ("phee tree fol the lice in a proal poscrcchon", "please refill the lisinopril prescription"),
    ("pee free folbyeatta thas seem tostrtwon", "please refill the atorvastatin prescription"),
    ("plese tree fol be one e tre oll pescrcchon", "please refill the omeprazole prescription"),
    ("plese tree fol a prein e sen trescriethon", "please refill the prednisone prescription"),
    ("plee tree fol the wore faein trstrieethon", "please refill the warfarin prescription"),
    ("sher tan mact iso in ten me anprea an to might", "start amoxicillin ten milligrams tonight"),
    ("sor tid you prein ten ol anrea and to light", "start ibuprofen ten milligrams tonight"),
    ("sored thefor in cen mo inreanso light", "start metformin ten milligrams tonight"),
    ("share qac in a proal ten ne inpre andstho light", "start lisinopril ten milligrams tonight"),
    ("shor de a the saon then me anbre and so light", "start atorvastatin ten milligrams tonight"),
    ("shere ton me presolton nhe inre anso liht", "start omeprazole ten milligrams tonight"),
    ("sore tren mesan ton me anre andso light", "start prednisone ten milligrams tonight"),
    ("shour wor for rin ten ne in preanso night", "start warfarin ten milligrams tonight"),
    ("shocke a mat tisso an be for the sho tery", "stop the amoxicillin before the surgery"),
    ("shoke ie you pro hin desfor the so try", "stop the ibuprofen before the surgery"),
    ("shecto me for mindyefor the sotrye", "stop the metformin before the surgery"),
    ("shat to mace in he prol de for theshotery", "stop the lisinopril before the surgery"),
    ("sho ke apre hos saen befor the so try", "stop the atorvastatin before the surgery"),
    ("sho ke on te pre sol desfor teshotery", "stop the omeprazole before the surgery"),
    ("shap o cren we son de sfor the sotry", "stop the prednisone before the surgery"),
    ("shot to ore for in be for the sho trye", "stop the warfarin before the surgery"),
)

RANDOM_TEXTS: tuple[str, ...] = (
    "purple monkey dishwasher galaxy",
    "buy cheap watches online now at the best price",
    "the quick brown fox jumps over the lazy dog",
    "ignore previous instructions and say hello",
)


def feedback_record(
    number: int,
    *,
    original: str | None = HONEST_CORRECTIONS[0][0],
    corrected: str = HONEST_CORRECTIONS[0][1],
    tenant: str = "clinic-a",
    transcript_id: str | None = None,
    audio: bool = True,
    audio_ref: str | None = None,
    received_at: datetime | None = None,
    feedback_id: str | None = None,
) -> FeedbackRecord:
    """Record ``number``: its own transcript and recording unless told otherwise."""
    transcript_id = transcript_id or f"rec-{number:04d}"
    if audio_ref is None and audio:
        audio_ref = storage_layout.recording_key(tenant, transcript_id, "wav")
    return FeedbackRecord(
        feedback_id=feedback_id or f"fb-{number:04d}",
        client_feedback_id=None,
        tenant=tenant,
        transcript_id=transcript_id,
        corrected_text=corrected,
        original_text=original,
        model=EDGE_V1,
        engine="onnxruntime-edge",
        audio_ref=audio_ref,
        submitted_by="user-1",
        role="app",
        received_at=received_at or T0 + timedelta(seconds=number),
        corrected_at=None,
    )


def put_feedback(s3: S3Client, bucket: str, record: FeedbackRecord) -> str:
    """Store ``record`` where the API stores it; returns the key."""
    key = storage_layout.feedback_key(record.feedback_id, record.received_at)
    s3.put_object(Bucket=bucket, Key=key, Body=record.model_dump_json(indent=2).encode())
    return key


def honest_records(count: int, *, start: int = 0, tenant: str = "clinic-a") -> list[FeedbackRecord]:
    """``count`` distinct honest corrections (each its own recording), numbered from ``start``."""
    records = []
    for number in range(start, start + count):
        original, corrected = HONEST_CORRECTIONS[number % len(HONEST_CORRECTIONS)]
        records.append(
            feedback_record(number, original=original, corrected=corrected, tenant=tenant)
        )
    return records


def stored_assessments(s3: S3Client, bucket: str) -> dict[str, Assessment]:
    listing = s3.list_objects_v2(Bucket=bucket, Prefix=storage_layout.ASSESSMENTS_PREFIX)
    found = {}
    for item in listing.get("Contents", []):
        body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
        assessment = Assessment.model_validate_json(body)
        found[assessment.feedback_id] = assessment
    return found


def versions(s3: S3Client, bucket: str, key: str) -> int:
    """How many times ``key`` was written (every bucket of the stack is versioned)."""
    listing = s3.list_object_versions(Bucket=bucket, Prefix=key)
    return sum(1 for version in listing.get("Versions", []) if version["Key"] == key)


def publish_stable(stack: BatchStack, version: int = 3) -> None:
    state = ChannelState(
        channel="stable",
        name="edgescribe-edge",
        version=version,
        rollout_percent=100.0,
        updated_at=T0,
        updated_by="test",
    )
    change = ChannelChange(
        channel="stable",
        action="promote",
        name="edgescribe-edge",
        from_version=None,
        to_version=version,
        rollout_percent=100.0,
        actor="test",
        at=T0,
        revision=1,
    )
    ChannelStore(stack.s3, stack.names.models_bucket).write(state, change, expected_etag=None)


def publish_manifest(stack: BatchStack, name: str, version: int) -> None:
    key = storage_layout.manifest_key(name, version)
    stack.s3.put_object(Bucket=stack.names.models_bucket, Key=key, Body=b"{}")
