"""Traffic for the learning-loop demo: recordings through the batch pipeline, corrections by an app.

Each clip is uploaded to the recordings bucket as ``recordings/<tenant>/<prefix>-NNN.ogg`` (the
bucket notification → queue → poller → batch function path every upload takes), and once its
transcript exists the app posts the clip's true text as a correction that references the
recording: exactly what the loop learns from.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from edgescribe.demo.http_calls import call, expect
from edgescribe.demo.steps import DemoContext, DemoStepError
from functions.common import aws_clients
from models.runtime import storage_layout
from models.runtime.transcript import Transcript

if TYPE_CHECKING:
    from edgescribe.local.running_stack import LocalCredentials
    from models.learning.clips import Clip

TENANT = "demo"
APP_SUBJECT = "demo-loop-app"
_POLL_SECONDS = 0.3


@dataclass(frozen=True)
class CorrectedRecording:
    recording_id: str
    key: str
    heard: str
    corrected: str
    feedback_id: str
    #: ``name vN``: the model that produced ``heard``.
    model: str


def app_token(credentials: LocalCredentials) -> str:
    return credentials.tokens.issue(subject=APP_SUBJECT, tenant=TENANT, role="app")


def correct_recordings(
    context: DemoContext, token: str, clips: Sequence[Clip], prefix: str
) -> list[CorrectedRecording]:
    """Upload ``clips``, wait for their transcripts, post each clip's text as a correction."""
    assert context.stack.api is not None
    s3 = aws_clients.s3_client()
    names = context.stack.names
    uploads: list[tuple[str, str, Clip]] = []
    for index, clip in enumerate(clips):
        recording_id = f"{prefix}-{index:03d}"
        key = storage_layout.recording_key(TENANT, recording_id, "ogg")
        s3.put_object(
            Bucket=names.recordings_bucket,
            Key=key,
            Body=clip.path.read_bytes(),
            ContentType="audio/ogg",
        )
        uploads.append((recording_id, key, clip))
    corrected = []
    for recording_id, key, clip in uploads:
        transcript = _wait_for_transcript(context, recording_id)
        receipt = expect(
            call(
                "POST",
                f"{context.stack.api.url}/v1/feedback",
                token=token,
                json_body={
                    "transcript_id": recording_id,
                    "corrected_text": clip.text,
                    "audio_ref": key,
                },
            ),
            201,
            f"POST /v1/feedback ({recording_id})",
        )
        corrected.append(
            CorrectedRecording(
                recording_id=recording_id,
                key=key,
                heard=transcript.text,
                corrected=clip.text,
                feedback_id=str(receipt["feedback_id"]),
                model=f"{transcript.model.name} v{transcript.model.version}",
            )
        )
    return corrected


def wait_for_shadow_results(context: DemoContext, version: int, recording_ids: list[str]) -> int:
    """Wait until the batch function stored a shadow result for every recording; their count."""
    s3 = aws_clients.s3_client()
    bucket = context.stack.names.transcripts_bucket
    keys = {storage_layout.shadow_transcript_key(TENANT, rid, version) for rid in recording_ids}
    while True:
        listing = s3.list_objects_v2(Bucket=bucket, Prefix=f"shadow/{TENANT}/")
        found = {item["Key"] for item in listing.get("Contents", [])} & keys
        if len(found) == len(keys):
            return len(found)
        if context.seconds_left() <= 0:
            raise DemoStepError(
                f"only {len(found)} of {len(keys)} shadow results appeared before the deadline"
            )
        time.sleep(_POLL_SECONDS)


def _wait_for_transcript(context: DemoContext, recording_id: str) -> Transcript:
    s3 = aws_clients.s3_client()
    names = context.stack.names
    key = storage_layout.transcript_key(TENANT, recording_id)
    while True:
        try:
            body = s3.get_object(Bucket=names.transcripts_bucket, Key=key)["Body"].read()
            return Transcript.model_validate_json(body)
        except s3.exceptions.NoSuchKey:
            pass
        error = storage_layout.error_key(TENANT, recording_id)
        listing = s3.list_objects_v2(Bucket=names.transcripts_bucket, Prefix=error)
        if listing.get("KeyCount", 0):
            raise DemoStepError(f"recording {recording_id} was rejected: see s3://.../{error}")
        if context.seconds_left() <= 0:
            raise DemoStepError(f"no transcript of {recording_id} before the deadline")
        time.sleep(_POLL_SECONDS)
