"""``POST /v1/transcriptions`` (short clip → transcript now; long → a job) and ``GET .../{id}``."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query

from edgescribe import settings
from functions.api import config
from functions.api.audio_body import AudioClip, UploadAnnouncement, parse_transcription_body
from functions.api.auth import Principal, require_role
from functions.api.jobs import JobRecord, JobStore, new_job_id, transcription_status
from functions.api.problems import (
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
    Unprocessable,
    UnsupportedMediaType,
    problem_responses,
)
from functions.api.routes import checked_id, principal_of
from functions.api.schemas import (
    AudioFormat,
    TranscriptionJob,
    TranscriptionRequest,
    TranscriptionStatus,
    UploadInstructions,
)
from functions.common.aws_clients import dynamodb_client, s3_client
from functions.common.environment import resource_name
from models.runtime import storage_layout
from models.runtime.transcript import Transcript

if TYPE_CHECKING:
    from models.runtime.transcriber import Transcriber

router = Router()  # type: ignore[no-untyped-call]  # powertools leaves __init__ unannotated
logger = logging.getLogger(__name__)

_REQUEST_BODY = {
    "requestBody": {
        "required": True,
        "description": (
            f"A clip of at most {settings.SYNC_MAX_SECONDS:.0f} s and {settings.SYNC_MAX_BYTES} bytes "
            "as raw audio, or JSON. Longer clips are queued (202). JSON without audio_base64 "
            "announces a long recording and returns an upload URL."
        ),
        "content": {
            "application/json": {"schema": TranscriptionRequest.model_json_schema()},
            "audio/*": {"schema": {"type": "string", "format": "binary"}},
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


@router.post(
    "/v1/transcriptions",
    summary="Transcribe a short clip now, or queue a long recording",
    tags=["transcriptions"],
    responses={
        200: {
            "description": "The transcript",
            "content": {"application/json": {"model": Transcript}},
        },
        202: {
            "description": "Queued for the batch pipeline (upload the audio first if announced)",
            "content": {"application/json": {"model": TranscriptionJob}},
        },
        **problem_responses(400, 401, 403, 413, 415, 422, 503),
    },
    openapi_extensions=_REQUEST_BODY,
)
def create_transcription(
    format: Annotated[
        AudioFormat | None, Query(description="Audio format, for application/octet-stream bodies")
    ] = None,
) -> Response[str]:
    principal = principal_of(router)
    require_role(principal, "app", "device", "admin")
    event = router.current_event
    parsed = parse_transcription_body(
        event.body,
        is_base64=bool(event.is_base64_encoded),
        content_type=event.headers.get("content-type"),
        query_format=format,
    )
    if isinstance(parsed, UploadAnnouncement):
        return _accepted(_announce_upload(principal, parsed.format))
    return _transcribe_or_queue(principal, parsed)


@router.get(
    "/v1/transcriptions/<transcription_id>",
    summary="Status and result of a transcription (the caller's tenant only)",
    tags=["transcriptions"],
    responses={
        200: {
            "description": "Status",
            "content": {"application/json": {"model": TranscriptionStatus}},
        },
        **problem_responses(400, 401, 403, 404),
    },
)
def get_transcription(transcription_id: str) -> TranscriptionStatus:
    principal = principal_of(router)
    require_role(principal, "app", "device", "admin")
    transcription_id = checked_id(transcription_id, "transcription id")
    job = JobStore(dynamodb_client(), resource_name("JOBS_TABLE")).get_for_tenant(
        transcription_id, principal.tenant
    )
    status = transcription_status(
        s3_client(),
        transcripts_bucket=resource_name("TRANSCRIPTS_BUCKET"),
        recordings_bucket=resource_name("RECORDINGS_BUCKET"),
        tenant=principal.tenant,
        transcription_id=transcription_id,
        job=job,
    )
    if status is None:
        raise NotFound(f"no transcription {transcription_id!r} in your tenant")
    return status


def _transcribe_or_queue(principal: Principal, clip: AudioClip) -> Response[str]:
    from models.runtime.audio import (
        AudioDecodeError,
        AudioTooLargeError,
        AudioTooLongError,
        UnsupportedFormatError,
        decode_audio,
    )

    try:
        audio = decode_audio(
            clip.data,
            name=f"upload.{clip.format}",
            max_seconds=settings.SYNC_MAX_SECONDS,
            max_bytes=settings.SYNC_MAX_BYTES,
        )
    except AudioTooLongError:
        return _accepted(_queue_clip(principal, clip))
    except AudioTooLargeError as exc:
        raise PayloadTooLarge(f"audio rejected: {exc.reason}") from exc
    except UnsupportedFormatError as exc:
        raise UnsupportedMediaType(f"audio rejected: {exc.reason}") from exc
    except AudioDecodeError as exc:
        raise Unprocessable(f"audio rejected: {exc.reason}") from exc

    transcriber = _transcriber()
    transcript_id = new_job_id()
    transcript = transcriber.transcribe(audio, transcript_id=transcript_id)
    from functions.common.transcript_store import write_transcript

    # Stored like a batch result, so GET /v1/transcriptions/{id} and feedback can refer to it.
    write_transcript(
        s3_client(),
        resource_name("TRANSCRIPTS_BUCKET"),
        principal.tenant,
        transcript_id,
        transcript,
        metadata={"source": "api-sync"},
    )
    return Response(
        status_code=200, content_type="application/json", body=transcript.model_dump_json()
    )


def _transcriber() -> Transcriber:
    """The per-container transcriber (``EDGESCRIBE_INFERENCE`` picks onnxruntime or Triton).

    A model or backend that cannot load is our fault (503), never the client's.
    """
    from functions.inference.selection import (
        InferenceConfigurationError,
        transcriber_from_environment,
    )
    from models.runtime.artifacts import ModelArtifactError

    try:
        return transcriber_from_environment()
    except (ModelArtifactError, InferenceConfigurationError, OSError) as exc:
        logger.exception("transcription model failed to load")
        raise ServiceUnavailable(f"the transcription model is unavailable: {exc}") from exc


def _announce_upload(principal: Principal, fmt: str) -> TranscriptionJob:
    job_id = new_job_id()
    key = storage_layout.recording_key(principal.tenant, job_id, fmt)
    ttl = config.upload_url_ttl_seconds()
    now = datetime.now(UTC)
    _record_job(principal, job_id, fmt, key, "upload_url", now)
    url = s3_client().generate_presigned_url(
        "put_object",
        Params={"Bucket": resource_name("RECORDINGS_BUCKET"), "Key": key},
        ExpiresIn=ttl,
    )
    return TranscriptionJob(
        id=job_id,
        status="awaiting_upload",
        status_url=f"/v1/transcriptions/{job_id}",
        upload=UploadInstructions(url=url, expires_at=now + timedelta(seconds=ttl)),
    )


def _queue_clip(principal: Principal, clip: AudioClip) -> TranscriptionJob:
    """Too long to transcribe inline: store it where the batch pipeline picks it up."""
    job_id = new_job_id()
    key = storage_layout.recording_key(principal.tenant, job_id, clip.format)
    now = datetime.now(UTC)
    _record_job(principal, job_id, clip.format, key, "request_body", now)
    s3_client().put_object(Bucket=resource_name("RECORDINGS_BUCKET"), Key=key, Body=clip.data)
    return TranscriptionJob(
        id=job_id, status="processing", status_url=f"/v1/transcriptions/{job_id}"
    )


def _record_job(
    principal: Principal, job_id: str, fmt: str, key: str, source: str, now: datetime
) -> None:
    JobStore(dynamodb_client(), resource_name("JOBS_TABLE")).create(
        JobRecord.model_validate(
            {
                "job_id": job_id,
                "tenant": principal.tenant,
                "created_at": now,
                "created_by": principal.actor,
                "format": fmt,
                "recording_key": key,
                "source": source,
            }
        )
    )


def _accepted(job: TranscriptionJob) -> Response[str]:
    return Response(status_code=202, content_type="application/json", body=job.model_dump_json())
