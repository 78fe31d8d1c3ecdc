"""Request and response bodies of the HTTP API (pydantic; docs/openapi.json is generated from them).

Request models forbid unknown fields, so a misspelt field is a 422 naming it rather than a silently
ignored option. Ids that end up in storage keys are checked with ``storage_layout.validate_id``
here, at the edge of the system.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from edgescribe import settings
from functions.distribution.channels import Channel, ChannelState
from functions.distribution.directive import RollbackDirective
from functions.distribution.service import DistributionStatus
from functions.fleet.registry import DeviceRecord, FleetSummary, Health
from models.runtime import storage_layout
from models.runtime.manifest import ModelManifest
from models.runtime.transcript import ModelRef, Transcript

AudioFormat = Literal["wav", "flac", "ogg", "opus", "mp3", "m4a", "aac", "webm"]
assert set(AudioFormat.__args__) == set(storage_layout.AUDIO_EXTENSIONS)  # type: ignore[attr-defined]

#: Base64 inflates 3 bytes to 4: the longest ``audio_base64`` that can hold ``SYNC_MAX_BYTES``.
MAX_AUDIO_BASE64_CHARS = (settings.SYNC_MAX_BYTES + 2) // 3 * 4
MAX_TEXT_CHARS = 20_000


def _safe_id(value: str, what: str) -> str:
    try:
        return storage_layout.validate_id(value, what)
    except storage_layout.InvalidKeyError as exc:
        raise ValueError(str(exc)) from exc


# --- transcriptions -----------------------------------------------------------------------------


class TranscriptionRequest(BaseModel):
    """JSON form of ``POST /v1/transcriptions``.

    With ``audio_base64``: a clip to transcribe now (or, if longer than the synchronous limit, to
    queue). Without it: announce a long recording and get an upload URL for it.
    """

    model_config = ConfigDict(extra="forbid")

    format: AudioFormat
    audio_base64: str | None = Field(default=None, max_length=MAX_AUDIO_BASE64_CHARS)


JobStatus = Literal["awaiting_upload", "processing", "completed", "failed"]


class UploadInstructions(BaseModel):
    """Where to PUT the recording (a pre-signed URL that stops working at ``expires_at``)."""

    url: str
    method: Literal["PUT"] = "PUT"
    expires_at: datetime
    max_bytes: int = settings.MAX_UPLOAD_BYTES


class TranscriptionJob(BaseModel):
    """A queued transcription (202): poll ``status_url`` until it is ``completed`` or ``failed``."""

    id: str
    status: JobStatus
    status_url: str
    upload: UploadInstructions | None = None


class JobError(BaseModel):
    code: str
    reason: str


class TranscriptionStatus(BaseModel):
    id: str
    status: JobStatus
    transcript: Transcript | None = Field(default=None, description="Set once completed.")
    error: JobError | None = None


# --- feedback -----------------------------------------------------------------------------------


class FeedbackRequest(BaseModel):
    """A user's correction of a transcript.

    ``feedback_id`` makes retries idempotent (the edge outbox sends the same id every time); without
    it the id is derived from the transcript id and the corrected text. ``corrected_at`` (when the
    user made the correction) fixes the day folder the record is stored under, so a retry days later
    lands on the same key. ``original_text``/``model`` are for transcripts made on a device that the
    cloud never stored; for cloud transcripts the stored values win.
    """

    model_config = ConfigDict(extra="forbid")

    transcript_id: str
    corrected_text: str = Field(max_length=MAX_TEXT_CHARS)
    audio_ref: str | None = Field(
        default=None, description="A recording key of your tenant: recordings/<tenant>/<id>.<ext>"
    )
    feedback_id: str | None = None
    corrected_at: AwareDatetime | None = None
    original_text: str | None = Field(default=None, max_length=MAX_TEXT_CHARS)
    model: ModelRef | None = None

    @field_validator("transcript_id")
    @classmethod
    def _transcript_id_is_safe(cls, value: str) -> str:
        return _safe_id(value, "transcript id")

    @field_validator("feedback_id")
    @classmethod
    def _feedback_id_is_safe(cls, value: str | None) -> str | None:
        return None if value is None else _safe_id(value, "feedback id")


class FeedbackRecord(BaseModel):
    """What is stored at ``storage_layout.feedback_key``: the correction with who, when and which model."""

    feedback_id: str
    client_feedback_id: str | None
    tenant: str
    transcript_id: str
    corrected_text: str
    original_text: str | None
    model: ModelRef | None
    engine: str | None
    audio_ref: str | None
    submitted_by: str
    role: str
    received_at: datetime
    corrected_at: datetime | None


class FeedbackReceipt(BaseModel):
    feedback_id: str
    duplicate: bool = Field(description="True when this exact feedback was already stored.")
    received_at: datetime
    model: ModelRef | None


# --- devices ------------------------------------------------------------------------------------


class DeviceModelResponse(BaseModel):
    """What the device should run, and everything it needs to verify and fetch it."""

    action: Literal["none", "update", "rollback"]
    channel: Channel | None
    version: int | None
    manifest: ModelManifest | None
    url: str | None = Field(default=None, description="Pre-signed GET of the model bytes.")
    url_expires_at: datetime | None = None
    rollback: RollbackDirective | None = Field(
        default=None, description="Signed permission to install an older version."
    )


class HeartbeatRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int | None = Field(default=None, ge=0, description="Installed model version.")
    health: Health
    queue_depth: int = Field(default=0, ge=0, le=10_000_000)
    last_error: str | None = Field(default=None, max_length=10_000)
    agent_version: str | None = Field(default=None, max_length=64)


class HeartbeatAck(BaseModel):
    device_id: str
    received_at: datetime
    channel: Channel | None


class ChannelPinRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: Channel | None = Field(description="null unpins the device (bucketing decides).")


class FleetListing(BaseModel):
    summary: FleetSummary
    devices: list[DeviceRecord]


# --- model distribution (admin) -----------------------------------------------------------------


class PromoteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=1)
    rollout_percent: float | None = Field(default=None, ge=0, le=100)
    name: str | None = None
    reason: str = Field(default="", max_length=2000)

    @field_validator("name")
    @classmethod
    def _name_is_safe(cls, value: str | None) -> str | None:
        return None if value is None else _safe_id(value, "model name")


class RollbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to_version: int | None = Field(default=None, ge=1)
    reason: str = Field(default="", max_length=2000)


class RollbackResult(BaseModel):
    states: list[ChannelState]


__all__ = [
    "AudioFormat",
    "ChannelPinRequest",
    "DeviceModelResponse",
    "DeviceRecord",
    "DistributionStatus",
    "FeedbackReceipt",
    "FeedbackRecord",
    "FeedbackRequest",
    "FleetListing",
    "HeartbeatAck",
    "HeartbeatRequest",
    "PromoteRequest",
    "RollbackRequest",
    "RollbackResult",
    "TranscriptionJob",
    "TranscriptionRequest",
    "TranscriptionStatus",
    "UploadInstructions",
]
