"""Demo step: batch transcription — upload to S3, let SQS and the function do the rest.

Uploads every sample clip to ``recordings/demo/<id>.<ext>``, plus one deliberately broken upload (a
WAV cut in half, as an interrupted upload leaves it), then waits for ``transcripts/demo/<id>.json``
and ``errors/demo/<broken>.json`` to appear — nothing here calls the handler; the poller feeds it
from the queue exactly as Lambda would. Prints each transcript beside its reference with its CER,
the corpus CER, and the error record of the broken upload.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from edgescribe.demo.steps import DemoContext, DemoStepError, Need
from functions.common import aws_clients
from models.runtime import storage_layout
from models.runtime.scoring import ErrorCounter, cer
from models.runtime.transcript import Transcript

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from edgescribe.samples import Sample

TENANT = "demo"
BROKEN_UPLOAD_ID = "interrupted-upload"
_POLL_SECONDS = 0.2


@dataclass(frozen=True)
class DemoUpload:
    recording_id: str
    key: str
    sample: Sample | None  # None for the broken upload


class BatchTranscriptionStep:
    name = "batch"
    title = "Batch transcription: S3 upload → SQS → batch function → transcripts bucket"
    needs: frozenset[Need] = frozenset({"poller"})

    def run(self, context: DemoContext) -> None:
        names = context.stack.names
        s3 = aws_clients.s3_client()
        uploads = _plan_uploads(context.samples)
        started = time.monotonic()
        for upload in uploads:
            assert upload.sample is not None
            s3.put_object(
                Bucket=names.recordings_bucket, Key=upload.key, Body=upload.sample.path.read_bytes()
            )
        broken = DemoUpload(
            recording_id=BROKEN_UPLOAD_ID,
            key=storage_layout.recording_key(TENANT, BROKEN_UPLOAD_ID, "wav"),
            sample=None,
        )
        s3.put_object(
            Bucket=names.recordings_bucket, Key=broken.key, Body=_interrupted_wav(context.samples)
        )
        context.say(
            f"uploaded {len(uploads)} clips and 1 interrupted upload to "
            f"s3://{names.recordings_bucket}/recordings/{TENANT}/"
        )
        context.say("waiting for the poller → batch function → transcripts bucket ...")

        transcripts_bucket = names.transcripts_bucket
        wanted = {storage_layout.transcript_key(TENANT, u.recording_id) for u in uploads}
        wanted.add(storage_layout.error_key(TENANT, broken.recording_id))
        _wait_for_objects(s3, transcripts_bucket, wanted, context)
        context.say(
            f"all {len(uploads)} transcripts and the error record arrived "
            f"{time.monotonic() - started:.1f} s after the uploads\n"
        )

        totals = ErrorCounter()
        for upload in uploads:
            assert upload.sample is not None
            transcript = Transcript.model_validate_json(
                _read(
                    s3,
                    transcripts_bucket,
                    storage_layout.transcript_key(TENANT, upload.recording_id),
                )
            )
            reference = upload.sample.text
            totals.add(reference, transcript.text)
            context.say(
                f"{upload.sample.path.name:<24} {transcript.audio.duration:5.1f} s  "
                f"CER {cer(reference, transcript.text):6.1%}  "
                f"({transcript.model.name} v{transcript.model.version}, {transcript.engine})"
            )
            context.say(f"    reference   {reference}")
            context.say(f"    transcript  {transcript.text}")
        context.say(
            f"corpus CER {totals.cer:.1%}, WER {totals.wer:.1%} over {totals.utterances} clips\n"
        )

        record = json.loads(
            _read(s3, transcripts_bucket, storage_layout.error_key(TENANT, broken.recording_id))
        )
        if record.get("code") != "corrupt_audio":
            raise DemoStepError(
                "the interrupted upload should be rejected as corrupt_audio, "
                f"got {record.get('code')!r}"
            )
        context.say(f"interrupted upload {broken.key} → errors/{TENANT}/{BROKEN_UPLOAD_ID}.json")
        context.say(f"    code    {record['code']}")
        context.say(f"    reason  {record['reason']}")
        context.say(f"    source  s3://{record['source']['bucket']}/{record['source']['key']}")
        poller = context.stack.poller
        if poller is not None:
            stats = poller.stats
            context.say(
                f"poller: {stats.batches} handler invocations, {stats.deleted} messages done, "
                f"{stats.failed} retried"
            )


def _plan_uploads(samples: list[Sample]) -> list[DemoUpload]:
    """``recordings/demo/<stem>.<ext>``; a stem shared by two clips gets its extension appended."""
    stems = [sample.path.stem for sample in samples]
    uploads = []
    for sample in samples:
        extension = sample.path.suffix.lstrip(".").lower()
        recording_id = sample.path.stem
        if stems.count(recording_id) > 1:
            recording_id = f"{recording_id}-{extension}"
        key = storage_layout.recording_key(TENANT, recording_id, extension)
        uploads.append(DemoUpload(recording_id=recording_id, key=key, sample=sample))
    return uploads


def _interrupted_wav(samples: list[Sample]) -> bytes:
    """The first half of a sample WAV: a valid header promising audio that never arrived."""
    for sample in samples:
        if sample.path.suffix.lower() == ".wav":
            data = sample.path.read_bytes()
            return data[: len(data) // 2]
    raise DemoStepError("no WAV among the sample clips to cut into an interrupted upload")


def _wait_for_objects(s3: S3Client, bucket: str, keys: set[str], context: DemoContext) -> None:
    missing = set(keys)
    while missing:
        for key in sorted(missing):
            if _exists(s3, bucket, key):
                missing.discard(key)
        if not missing:
            return
        if context.seconds_left() <= 0:
            raise DemoStepError(
                f"timed out waiting for {len(missing)} object(s) in s3://{bucket}: "
                f"{', '.join(sorted(missing))}"
            )
        time.sleep(_POLL_SECONDS)


def _exists(s3: S3Client, bucket: str, key: str) -> bool:
    listing = s3.list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1)
    return any(item.get("Key") == key for item in listing.get("Contents", []))


def _read(s3: S3Client, bucket: str, key: str) -> bytes:
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


STEP = BatchTranscriptionStep()
