"""Demo step: the HTTP API as a mobile app uses it, over real HTTP to the API function.

With a dev app token (a JWT the local token authority signs; the function verifies it as it would
Cognito's), the step:

1. posts a short clip to ``POST /v1/transcriptions`` and prints the transcript that comes back;
2. announces a long recording (``POST /v1/transcriptions`` without audio → 202 and a pre-signed
   upload URL), uploads the clip to that URL, and polls ``GET /v1/transcriptions/{id}`` while the
   batch pipeline (bucket notification → queue → poller → batch function) finishes the job;
3. corrects the first transcript with ``POST /v1/feedback`` and shows where the correction is
   stored for the learning loop;
4. shows that a request without a token is refused (401) before anything else runs.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

from edgescribe.demo.http_calls import call, expect
from edgescribe.demo.steps import DemoContext, DemoStepError, Need
from functions.common import aws_clients
from models.runtime import storage_layout
from models.runtime.transcript import Transcript

if TYPE_CHECKING:
    from edgescribe.local.running_stack import LocalCredentials
    from edgescribe.samples import Sample

TENANT = "demo"
APP_SUBJECT = "demo-app"
_POLL_SECONDS = 0.3
_MIME = {"wav": "audio/wav", "flac": "audio/flac", "ogg": "audio/ogg", "mp3": "audio/mpeg"}


class ApiStep:
    name = "api"
    title = "HTTP API: app token → transcribe a clip, a long job, a correction"
    needs: frozenset[Need] = frozenset({"api", "poller"})

    def run(self, context: DemoContext) -> None:
        stack = context.stack
        if stack.api is None or stack.credentials is None:
            raise DemoStepError("the local stack was started without the API")
        base = stack.api.url
        token = _app_token(stack.credentials)
        context.say(f"API function served on {base}; app token: role app, tenant '{TENANT}'")
        short, long = _pick_clips(context.samples)

        transcript = _transcribe_now(context, base, token, short)
        _long_job(context, base, token, long)
        _correct(context, base, token, transcript, short.text)

        refused = call("POST", f"{base}/v1/transcriptions", body=b"RIFF", content_type="audio/wav")
        if refused.status != 401:
            raise DemoStepError(f"a request without a token got HTTP {refused.status}, not 401")
        context.say(f"no token          → POST /v1/transcriptions 401: {refused.detail}")


def _app_token(credentials: LocalCredentials) -> str:
    return credentials.tokens.issue(subject=APP_SUBJECT, tenant=TENANT, role="app")


def _pick_clips(samples: list[Sample]) -> tuple[Sample, Sample]:
    """A clip to send inline, and a different one to send as a "long" recording."""
    usable = [s for s in samples if s.path.suffix.lstrip(".").lower() in _MIME]
    if len(usable) < 2:
        raise DemoStepError("the API step needs two WAV/FLAC/OGG/MP3 sample clips")
    return usable[0], usable[1]


def _transcribe_now(context: DemoContext, base: str, token: str, sample: Sample) -> Transcript:
    extension = sample.path.suffix.lstrip(".").lower()
    started = time.monotonic()
    reply = call(
        "POST",
        f"{base}/v1/transcriptions",
        token=token,
        body=sample.path.read_bytes(),
        content_type=_MIME[extension],
    )
    transcript = Transcript.model_validate(
        expect(reply, 200, f"POST /v1/transcriptions ({sample.path.name})")
    )
    context.say(
        f"POST /v1/transcriptions  {sample.path.name} ({_MIME[extension]}) → 200 in "
        f"{time.monotonic() - started:.2f} s"
    )
    context.say(f"    id          {transcript.id}")
    context.say(f"    transcript  {transcript.text!r}")
    context.say(
        f"    engine      {transcript.engine} ({transcript.model.name} v{transcript.model.version})"
    )
    return transcript


def _long_job(context: DemoContext, base: str, token: str, sample: Sample) -> None:
    extension = sample.path.suffix.lstrip(".").lower()
    announced = expect(
        call("POST", f"{base}/v1/transcriptions", token=token, json_body={"format": extension}),
        202,
        "POST /v1/transcriptions (announce a long recording)",
    )
    job_id, upload = str(announced["id"]), announced.get("upload") or {}
    if not upload.get("url"):
        raise DemoStepError(f"the announced job {job_id} came without an upload URL")
    context.say(
        f"POST /v1/transcriptions  {{format: {extension}}} → 202 job {job_id} "
        f"({announced['status']}, pre-signed upload URL valid until {upload['expires_at']})"
    )
    # With a Content-Type, as apps send it: urllib's default (form-urlencoded) makes the moto
    # server try to parse the audio as a form and never answer.
    put = call(
        "PUT", str(upload["url"]), body=sample.path.read_bytes(), content_type=_MIME[extension]
    )
    if put.status != 200:
        raise DemoStepError(f"upload to the pre-signed URL failed: HTTP {put.status} {put.detail}")
    context.say(f"PUT  <pre-signed URL>    {sample.path.name} → 200 (straight into the bucket)")

    started = time.monotonic()
    seen: list[str] = []
    status: dict[str, Any] = {}
    while True:
        status = expect(
            call("GET", f"{base}/v1/transcriptions/{job_id}", token=token),
            200,
            f"GET /v1/transcriptions/{job_id}",
        )
        if not seen or seen[-1] != status["status"]:
            seen.append(str(status["status"]))
        if status["status"] in ("completed", "failed"):
            break
        if context.seconds_left() <= 0:
            raise DemoStepError(
                f"job {job_id} still {status['status']} when the demo ran out of time"
            )
        time.sleep(_POLL_SECONDS)
    context.say(
        f"GET  /v1/transcriptions/{job_id} → {' → '.join(seen)} "
        f"after {time.monotonic() - started:.1f} s (batch pipeline)"
    )
    if status["status"] != "completed":
        raise DemoStepError(f"job {job_id} failed: {status.get('error')}")
    transcript = Transcript.model_validate(status["transcript"])
    context.say(f"    transcript  {transcript.text!r} ({transcript.engine})")


def _correct(
    context: DemoContext, base: str, token: str, transcript: Transcript, corrected: str
) -> None:
    receipt = expect(
        call(
            "POST",
            f"{base}/v1/feedback",
            token=token,
            json_body={"transcript_id": transcript.id, "corrected_text": corrected},
        ),
        201,
        "POST /v1/feedback",
    )
    feedback_id = str(receipt["feedback_id"])
    key = storage_layout.feedback_key(feedback_id, datetime.fromisoformat(receipt["received_at"]))
    bucket = context.stack.names.feedback_bucket
    stored = aws_clients.s3_client().list_objects_v2(Bucket=bucket, Prefix=key)
    if not any(item.get("Key") == key for item in stored.get("Contents", [])):
        raise DemoStepError(
            f"feedback {feedback_id} was acknowledged but s3://{bucket}/{key} is missing"
        )
    context.say(f"POST /v1/feedback        correction of {transcript.id} → 201 {feedback_id}")
    context.say(f"    stored at   s3://{bucket}/{key}")
    context.say(f"    corrected   {corrected!r}")


STEP = ApiStep()
