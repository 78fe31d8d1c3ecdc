"""Request and response bodies of the HTTP API (pydantic; docs/openapi.json is generated from them).

Request models forbid unknown fields, so a misspelt field is a 422 naming it rather than a silently
ignored option. Ids that end up in storage keys are checked with ``storage_layout.validate_id``
here, at the edge of the system.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from edgescribe import settings
from functions.distribution.channels import Channel, ChannelState
from functions.distribution.service import DistributionStatus
from functions.fleet.registry import DeviceRecord, FleetSummary, Health
from models.runtime import storage_layout
from models.runtime.manifest import ModelManifest
from models.runtime.rollback_directive import RollbackDirective
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


#: The largest offline-transcript upload (bytes of JSON). A 4-hour recording (the longest the platform
#: accepts) at 150 words a minute makes about 3.0 MB of upload as the edge client sends it (84 bytes
#: a word with its times); Lambda's synchronous payload limit is 6 MB, and the body travels
#: JSON-escaped (about 15 % larger) inside the event.
MAX_EDGE_TRANSCRIPT_BYTES = 4 * 1024 * 1024
MAX_CLOUD_ERROR_CHARS = 2_000
#: Segment and word times of an uploaded transcript lie within the longest recording (plus slack
#: for frame rounding); beyond that they are garbage and would break the subtitle writers.
MAX_TRANSCRIPT_SECONDS = settings.MAX_AUDIO_SECONDS + 60
#: The only engine a device's offline path produces; a device must not pass its own output off as
#: a cloud engine's (the learning loop attributes quality by ``engine``).
EDGE_ENGINE = "onnxruntime-edge"


class EdgeTranscriptUpload(BaseModel):
    """A transcript a device produced offline, uploaded from its outbox once the link returns.

    ``produced_at`` is the device's clock and is stored as reported, however far off: refusing it
    would make the device dead-letter a transcript that is otherwise fine (so is an overlong
    ``cloud_error``: it is truncated). ``cloud_error`` says why
    the cloud was not used (``offline mode``, a timeout). ``device_id`` is optional (the agent sends
    it) and, when present, must name the device in the path.
    """

    model_config = ConfigDict(extra="forbid")

    transcript: Transcript
    produced_at: AwareDatetime
    cloud_error: str | None = Field(
        default=None, description=f"Kept to its first {MAX_CLOUD_ERROR_CHARS} characters."
    )
    device_id: str | None = Field(default=None, description="Must equal the path's device id.")

    @field_validator("cloud_error")
    @classmethod
    def _cloud_error_is_bounded(cls, value: str | None) -> str | None:
        """Truncated, not refused: a long diagnostic must not cost the device its transcript."""
        return None if value is None else value[:MAX_CLOUD_ERROR_CHARS]

    @field_validator("device_id")
    @classmethod
    def _device_id_is_safe(cls, value: str | None) -> str | None:
        return None if value is None else _safe_id(value, "device id")

    @model_validator(mode="after")
    def _transcript_is_plausible(self) -> EdgeTranscriptUpload:
        transcript = self.transcript
        _safe_id(transcript.id, "transcript id")
        if transcript.engine != EDGE_ENGINE:
            raise ValueError(
                f"transcript.engine is {transcript.engine!r}; a device uploads only what it "
                f"transcribed itself ({EDGE_ENGINE!r})"
            )
        if not 0 <= transcript.audio.duration <= MAX_TRANSCRIPT_SECONDS:
            raise ValueError(
                f"transcript.audio.duration {transcript.audio.duration} is outside "
                f"0..{MAX_TRANSCRIPT_SECONDS} s"
            )
        if transcript.audio.sample_rate <= 0:
            raise ValueError("transcript.audio.sample_rate must be positive")
        spans = [(s.start, s.end, "segment") for s in transcript.segments]
        spans += [(w.start, w.end, "word") for w in transcript.words]
        for start, end, what in spans:
            if not (math.isfinite(start) and math.isfinite(end)):
                raise ValueError(f"a {what} time is not a finite number")
            if not 0 <= start <= end <= MAX_TRANSCRIPT_SECONDS:
                raise ValueError(
                    f"a {what} spans {start}..{end} s; times must satisfy "
                    f"0 <= start <= end <= {MAX_TRANSCRIPT_SECONDS}"
                )
        return self


class EdgeTranscriptReceipt(BaseModel):
    """The answer to an upload, identical for every retry of it (built from what is stored)."""

    transcript_id: str
    device_id: str
    produced_at: datetime
    received_at: datetime = Field(description="When the cloud first stored it.")
    status_url: str = Field(description="GET it back as a completed transcription.")


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
    "EdgeTranscriptReceipt",
    "EdgeTranscriptUpload",
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
