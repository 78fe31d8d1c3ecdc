"""``POST /v1/feedback``: a user's correction of a transcript, stored once for the learning loop."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body
from botocore.exceptions import ClientError

from functions.api.auth import Principal, require_role
from functions.api.feedback_store import derive_feedback_id, store_feedback
from functions.api.jobs import read_object
from functions.api.problems import NotFound, Unprocessable, problem_responses
from functions.api.routes import principal_of
from functions.api.schemas import FeedbackReceipt, FeedbackRecord, FeedbackRequest
from functions.common.aws_clients import s3_client
from functions.common.environment import resource_name
from models.runtime import storage_layout
from models.runtime.transcript import ModelRef, Transcript

router = Router()  # type: ignore[no-untyped-call]  # powertools leaves __init__ unannotated

#: ``corrected_at`` may lag (a device offline for months) but not lead the server's clock by much.
MAX_CORRECTION_AGE = timedelta(days=365)
MAX_CLOCK_SKEW = timedelta(minutes=5)


@router.post(
    "/v1/feedback",
    summary="Submit a correction of a transcript (idempotent by feedback_id)",
    tags=["feedback"],
    responses={
        201: {"description": "Stored", "content": {"application/json": {"model": FeedbackReceipt}}},
        200: {
            "description": "Already stored (a retry)",
            "content": {"application/json": {"model": FeedbackReceipt}},
        },
        **problem_responses(400, 401, 403, 404, 409, 415, 422),
    },
)
def submit_feedback(request: Annotated[FeedbackRequest, Body()]) -> Response[str]:
    principal = principal_of(router)
    require_role(principal, "app", "device", "admin")
    now = datetime.now(UTC)
    day = _correction_day(request, now)
    audio_ref = _checked_audio_ref(principal, request.audio_ref)
    original_text, model, engine = _transcript_facts(principal, request)
    record = FeedbackRecord(
        feedback_id=derive_feedback_id(
            principal.tenant, request.feedback_id, request.transcript_id, request.corrected_text
        ),
        client_feedback_id=request.feedback_id,
        tenant=principal.tenant,
        transcript_id=request.transcript_id,
        corrected_text=request.corrected_text,
        original_text=original_text,
        model=model,
        engine=engine,
        audio_ref=audio_ref,
        submitted_by=principal.subject,
        role=principal.role,
        received_at=now,
        corrected_at=request.corrected_at,
    )
    stored, duplicate = store_feedback(s3_client(), resource_name("FEEDBACK_BUCKET"), record, day)
    receipt = FeedbackReceipt(
        feedback_id=stored.feedback_id,
        duplicate=duplicate,
        received_at=stored.received_at,
        model=stored.model,
    )
    return Response(
        status_code=200 if duplicate else 201,
        content_type="application/json",
        body=receipt.model_dump_json(),
    )


def _correction_day(request: FeedbackRequest, now: datetime) -> datetime:
    if request.corrected_at is None:
        return now
    if request.corrected_at > now + MAX_CLOCK_SKEW:
        raise Unprocessable("corrected_at is in the future; check the device clock")
    if request.corrected_at < now - MAX_CORRECTION_AGE:
        raise Unprocessable("corrected_at is more than a year ago; such feedback is not accepted")
    return request.corrected_at.astimezone(UTC)


def _checked_audio_ref(principal: Principal, audio_ref: str | None) -> str | None:
    """An audio reference must be an existing recording of the caller's own tenant."""
    if audio_ref is None:
        return None
    try:
        ref = storage_layout.parse_recording_key(audio_ref)
    except storage_layout.InvalidKeyError as exc:
        raise Unprocessable(f"audio_ref: {exc}") from exc
    if ref.tenant != principal.tenant:
        raise Unprocessable("audio_ref must name a recording of your own tenant")
    try:
        s3_client().head_object(Bucket=resource_name("RECORDINGS_BUCKET"), Key=audio_ref)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            raise Unprocessable(f"audio_ref {audio_ref!r} does not exist") from exc
        raise
    return audio_ref


def _transcript_facts(
    principal: Principal, request: FeedbackRequest
) -> tuple[str | None, ModelRef | None, str | None]:
    """Original text, model and engine: from the stored transcript, else from the client."""
    body = read_object(
        s3_client(),
        resource_name("TRANSCRIPTS_BUCKET"),
        storage_layout.transcript_key(principal.tenant, request.transcript_id),
    )
    if body is not None:
        transcript = Transcript.model_validate_json(body)
        return transcript.text, transcript.model, transcript.engine
    if request.original_text is None:
        raise NotFound(
            f"no transcript {request.transcript_id!r} in your tenant; for a transcript made on a "
            "device, include original_text and model"
        )
    return request.original_text, request.model, None
