"""Every object key the platform reads or writes, built in one place.

Nobody concatenates key strings by hand: handlers, the API, distribution and the learning loop ask
this module. Ids that come from outside (tenants, recording ids, device ids) are validated here, so a
hostile id such as ``../../models/stable`` can never address another prefix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import PurePosixPath

#: Tenants, recording ids and device ids: letters, digits, dot, dash, underscore; no leading dot.
_SAFE_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
AUDIO_EXTENSIONS = ("wav", "flac", "ogg", "opus", "mp3", "m4a", "aac", "webm")
TRANSCRIPT_FORMATS = ("json", "srt", "vtt", "txt")
CHANNELS = ("shadow", "canary", "stable")


class InvalidKeyError(ValueError):
    """A key or id that does not belong to the layout (wrong prefix, hostile characters)."""


def validate_id(value: str, what: str = "id") -> str:
    if not _SAFE_ID.match(value) or ".." in value:
        raise InvalidKeyError(f"invalid {what} {value!r}: use letters, digits, '.', '-', '_'")
    return value


@dataclass(frozen=True)
class RecordingRef:
    """A recording parsed back from its key: ``recordings/<tenant>/<id>.<ext>``."""

    tenant: str
    recording_id: str
    extension: str


def recording_key(tenant: str, recording_id: str, extension: str) -> str:
    extension = extension.lower().lstrip(".")
    if extension not in AUDIO_EXTENSIONS:
        raise InvalidKeyError(f"unsupported extension {extension!r}")
    return f"recordings/{validate_id(tenant, 'tenant')}/{validate_id(recording_id, 'recording id')}.{extension}"


def parse_recording_key(key: str) -> RecordingRef:
    parts = key.split("/")
    if len(parts) != 3 or parts[0] != "recordings":
        raise InvalidKeyError(
            f"not a recording key: {key!r} (expected recordings/<tenant>/<id>.<ext>)"
        )
    tenant, filename = parts[1], parts[2]
    stem, dot, extension = filename.rpartition(".")
    if not dot:
        raise InvalidKeyError(f"recording key without an extension: {key!r}")
    validate_id(tenant, "tenant")
    validate_id(stem, "recording id")
    return RecordingRef(tenant=tenant, recording_id=stem, extension=extension.lower())


def transcript_key(tenant: str, recording_id: str, fmt: str = "json") -> str:
    if fmt not in TRANSCRIPT_FORMATS:
        raise InvalidKeyError(f"unknown transcript format {fmt!r}")
    return f"transcripts/{validate_id(tenant, 'tenant')}/{validate_id(recording_id, 'recording id')}.{fmt}"


def shadow_transcript_key(tenant: str, recording_id: str, version: int) -> str:
    """Shadow-model results live apart from user-visible transcripts."""
    return f"shadow/{validate_id(tenant, 'tenant')}/{validate_id(recording_id, 'recording id')}.v{version}.json"


def error_key(tenant: str, recording_id: str) -> str:
    return (
        f"errors/{validate_id(tenant, 'tenant')}/{validate_id(recording_id, 'recording id')}.json"
    )


def unroutable_error_key(event_id: str) -> str:
    """Error record for an event whose key could not even be parsed (hostile or foreign keys)."""
    return f"errors/_unroutable/{validate_id(event_id, 'event id')}.json"


def model_prefix(name: str, version: int) -> str:
    return f"models/{validate_id(name, 'model name')}/{int(version)}"


def model_key(name: str, version: int) -> str:
    return f"{model_prefix(name, version)}/model.onnx"


def manifest_key(name: str, version: int) -> str:
    return f"{model_prefix(name, version)}/manifest.json"


def channel_key(channel: str) -> str:
    if channel not in CHANNELS:
        raise InvalidKeyError(f"unknown channel {channel!r}; expected one of {CHANNELS}")
    return f"models/channels/{channel}.json"


def channel_history_key(channel: str, when: datetime) -> str:
    channel_key(channel)
    return f"models/channels/history/{channel}/{when:%Y%m%dT%H%M%S%f}.json"


def triton_repository_prefix(name: str) -> str:
    return f"triton/{validate_id(name, 'model name')}"


def feedback_key(feedback_id: str, when: datetime) -> str:
    return f"feedback/{when:%Y/%m/%d}/{validate_id(feedback_id, 'feedback id')}.json"


def feedback_audio_key(feedback_id: str, when: datetime, extension: str) -> str:
    base = feedback_key(feedback_id, when)
    return str(PurePosixPath(base).with_suffix(f".{extension.lower().lstrip('.')}"))


# --- learning loop --------------------------------------------------------------------------------
# Feedback bucket: ``feedback/...`` (what users sent) and ``assessments/...`` (what the quality
# assessment decided about each one). Models bucket: ``training/...`` (jobs, their data manifests,
# candidates and gate reports; the torch checkpoints that fine-tuning starts from).

ASSESSMENTS_PREFIX = "assessments/"
TRAINING_PREFIX = "training/"
TRAINING_JOBS_PREFIX = "training/jobs/"
#: Files a training job folder may hold (``training_job_key``).
TRAINING_JOB_FILES = (
    "job.json",
    "spec.json",
    "finetune.jsonl",
    "distill.jsonl",
    "domain-eval.jsonl",
    "gate.json",
    "gate.md",
    "train.log",
)


def assessment_key(feedback_id: str) -> str:
    """One assessment per feedback record (the feedback id is already tenant-scoped)."""
    return f"{ASSESSMENTS_PREFIX}{validate_id(feedback_id, 'feedback id')}.json"


def training_job_prefix(job_id: str) -> str:
    return f"{TRAINING_JOBS_PREFIX}{validate_id(job_id, 'training job id')}"


def training_job_key(job_id: str, filename: str) -> str:
    if filename not in TRAINING_JOB_FILES:
        raise InvalidKeyError(
            f"unknown training job file {filename!r}; expected {TRAINING_JOB_FILES}"
        )
    return f"{training_job_prefix(job_id)}/{filename}"


def candidate_prefix(job_id: str) -> str:
    """Where a training job leaves its candidate (``model.onnx`` + ``manifest.json``) for publishing."""
    return f"{training_job_prefix(job_id)}/candidate"


def checkpoint_key(name: str, version: int) -> str:
    """The torch weights a published version was exported from: the start of the next fine-tune."""
    return f"{TRAINING_PREFIX}checkpoints/{validate_id(name, 'model name')}/{int(version)}.pt"
