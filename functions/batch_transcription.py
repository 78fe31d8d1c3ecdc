"""Batch transcription: S3 ObjectCreated → SQS → ``handler`` → ``transcripts/<tenant>/<id>.*``.

Every upload ends in exactly one of three visible states:

- **transcribed**: ``transcripts/<tenant>/<id>.{txt,srt,vtt,json}`` (the ``.json`` written last);
- **rejected**: the input itself is bad (hostile key, oversize, empty, truncated, corrupt, not
  audio, too long): an error record ``errors/<tenant>/<id>.json`` (or ``errors/_unroutable/...``)
  says why, and the SQS message is *done* — retrying bad bytes can never succeed, so it must not
  poison the batch or cycle until the dead-letter queue;
- **retried**: anything else (S3 or DynamoDB unavailable, throttling, a bug in our code) raises; the
  message is reported in ``batchItemFailures``, reappears after the visibility timeout, and after
  ``settings.MAX_RECEIVE_COUNT`` receives moves to the dead-letter queue, where an operator sees it.

Order of checks for one upload (cheapest first, nothing trusted that came from outside):
1. parse the key with ``storage_layout.parse_recording_key`` (rejects traversal, missing tenant);
2. the extension must be an audio extension;
3. ``GetObject`` pinned to the event's version (or ``If-Match`` its ETag), ``ContentLength``
   checked against the size cap *before* the body is read;
4. ``decode_audio`` (format sniffed from the bytes; truncation, emptiness, duration cap);
5. transcribe (the ``Transcriber`` chunks long audio), write every format;
6. shadow: on a sampled share of recordings the shadow channel's candidate transcribes the same
   audio and its result is stored under ``shadow/`` (``functions.learning.shadow``; never raises,
   never changes what the user gets).

Idempotency: the work for one upload is a powertools ``idempotent_function`` keyed by
``bucket/key/etag/version_id`` in the idempotency table, so SQS's at-least-once delivery (or S3
notifying twice) yields one transcript and runs the model once. A rejected upload is also a
completed result: a duplicate neither rewrites its error record nor decodes again. A failure that
raises deletes the in-progress record, so the retry really runs.

Heavy things happen once per container: boto3 clients (``functions.common.aws_clients``) and the
transcriber (``functions.inference.selection.transcriber_from_environment``: in-process onnxruntime
over ``EDGESCRIBE_MODEL_DIR`` or the released model by default, Triton with onnxruntime fallback
when infra says so; with ``EDGESCRIBE_MODEL_CHANNEL=stable`` the in-process model follows the stable
channel, see ``functions.inference.channel_following``), both on first use rather than at import, so
test events and bad uploads never load the model.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from botocore.exceptions import BotoCoreError, ClientError

from edgescribe.settings import TABLE_KEYS
from functions.common import aws_clients
from functions.common.environment import input_limits, resource_name
from functions.common.error_records import (
    ErrorCode,
    ErrorRecord,
    ErrorSource,
    write_error_record,
)
from functions.common.s3_events import MalformedEventError, S3ObjectEvent, parse_notification
from functions.common.transcript_store import write_transcript
from functions.inference.selection import transcriber_from_environment
from functions.learning.shadow import run_shadow
from models.runtime import storage_layout
from models.runtime.audio import (
    AudioDecodeError,
    AudioTooLargeError,
    AudioTooLongError,
    CorruptAudioError,
    EmptyAudioError,
    UnsupportedFormatError,
    decode_audio,
)

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
    from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord
    from aws_lambda_powertools.utilities.typing import LambdaContext
    from mypy_boto3_s3 import S3Client

SERVICE = "batch-transcription"
METRICS_NAMESPACE = "EdgeScribe"
#: How long a finished upload is remembered. Longer than SQS keeps a message (4 days) plus a DLQ
#: redrive window, so a redriven duplicate is still recognised; DynamoDB's TTL then removes it.
IDEMPOTENCY_EXPIRY_SECONDS = 14 * 24 * 60 * 60

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=METRICS_NAMESPACE, service=SERVICE)

_AUDIO_ERROR_CODES: tuple[tuple[type[AudioDecodeError], ErrorCode], ...] = (
    (AudioTooLargeError, "audio_too_large"),
    (AudioTooLongError, "audio_too_long"),
    (EmptyAudioError, "empty_audio"),
    (CorruptAudioError, "corrupt_audio"),
    (UnsupportedFormatError, "unsupported_format"),
)
#: S3 error codes that mean "the object this event named is gone": a permanent outcome.
_MISSING_OBJECT_CODES = frozenset({"NoSuchKey", "NoSuchVersion", "404"})
#: ``If-Match`` failed: the key was overwritten after the event; the newer upload has its own event.
_SUPERSEDED_CODES = frozenset({"PreconditionFailed", "412"})


class TransientStorageError(RuntimeError):
    """S3 or DynamoDB failed in a way a retry may fix; the message goes back to SQS."""


class RejectedRecordingError(Exception):
    """The upload itself is unusable; becomes an error record, never a retry."""

    def __init__(self, code: ErrorCode, reason: str, error_type: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.error_type = error_type


class UploadSupersededError(Exception):
    """The object was replaced after this event; the replacement's own event will transcribe it."""


def _count_duplicate(response: Any, idempotent_data: DataRecord) -> Any:
    """powertools calls this when a stored result answers a repeated delivery."""
    metrics.add_metric(name="DuplicateDeliveriesSkipped", unit=MetricUnit.Count, value=1)
    logger.info("duplicate delivery: returning the stored outcome", extra={"outcome": response})
    return response


_IDEMPOTENCY_CONFIG = IdempotencyConfig(
    event_key_jmespath="[bucket, key, etag, version_id]",
    raise_on_no_idempotency_key=True,
    expires_after_seconds=IDEMPOTENCY_EXPIRY_SECONDS,
    response_hook=_count_duplicate,
)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    """Lambda entry point for the SQS event source; returns ``{"batchItemFailures": [...]}``."""
    _IDEMPOTENCY_CONFIG.register_lambda_context(context)
    metrics.add_metric(
        name="MessagesReceived", unit=MetricUnit.Count, value=len(event.get("Records", []))
    )
    # A processor per invocation: it keeps per-batch state, and the local poller or a test may call
    # the handler from another thread. Construction is cheap. Never raise for a fully failed batch:
    # the caller gets every failed id either way, and a raise would hide which ones.
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )


def record_handler(record: SQSRecord) -> list[dict[str, Any]]:
    """One SQS message: one S3 notification holding zero or more created objects."""
    try:
        notification = parse_notification(record.body)
    except MalformedEventError as exc:
        key = _reject(
            source=ErrorSource(message_id=record.message_id),
            ref=None,
            rejection=RejectedRecordingError("malformed_event", exc.reason, type(exc).__name__),
        )
        return [{"outcome": "rejected", "error_key": key}]
    if notification.is_test_event:
        logger.info("ignoring s3:TestEvent", extra={"message_id": record.message_id})
        return []
    for name in notification.ignored_events:
        logger.info("ignoring non-creation event", extra={"event_name": name})
    outcomes = []
    for upload in notification.objects:
        try:
            outcomes.append(transcribe_once(_with_identity(upload)))
        except Exception:
            metrics.add_metric(name="UploadsRetried", unit=MetricUnit.Count, value=1)
            logger.exception("upload failed; SQS will retry it", extra={"source": upload.uri})
            raise
    return outcomes


def transcribe_once(upload: S3ObjectEvent) -> dict[str, Any]:
    """``transcribe_upload`` behind the idempotency table: a repeated upload returns the stored
    outcome without downloading or transcribing again."""
    table = resource_name("IDEMPOTENCY_TABLE")
    outcome: dict[str, Any] = _idempotent_transcriber(table, aws_clients.endpoint_url())(
        upload=upload
    )
    return outcome


@cache
def _idempotent_transcriber(table: str, endpoint: str | None) -> Callable[..., dict[str, Any]]:
    """Built on first use (not at import) so the table name and endpoint come from the environment
    of the invocation; cached per (table, endpoint) for the container's life."""
    keys = TABLE_KEYS["idempotency_table"]
    persistence = DynamoDBPersistenceLayer(
        table_name=table,
        key_attr=keys.partition_key,
        expiry_attr=keys.ttl_attribute or "expiration",
        boto3_client=aws_clients.dynamodb_client(),
    )
    wrapped: Callable[..., dict[str, Any]] = idempotent_function(
        data_keyword_argument="upload",
        persistence_store=persistence,
        config=_IDEMPOTENCY_CONFIG,
    )(transcribe_upload)
    return wrapped


def transcribe_upload(*, upload: S3ObjectEvent) -> dict[str, Any]:
    """The work for one upload; returns a JSON-able outcome (stored by the idempotency layer)."""
    started = time.perf_counter()
    source = ErrorSource(
        bucket=upload.bucket,
        key=upload.key,
        etag=upload.etag,
        version_id=upload.version_id,
        size=upload.size,
    )
    try:
        ref = storage_layout.parse_recording_key(upload.key)
    except storage_layout.InvalidKeyError as exc:
        rejection = RejectedRecordingError("invalid_key", str(exc), type(exc).__name__)
        return {"outcome": "rejected", "error_key": _reject(source, None, rejection)}
    try:
        transcript_key = _transcribe_recording(upload, ref)
    except RejectedRecordingError as rejection:
        return {"outcome": "rejected", "error_key": _reject(source, ref, rejection)}
    except UploadSupersededError:
        metrics.add_metric(name="UploadsSuperseded", unit=MetricUnit.Count, value=1)
        logger.info("upload replaced before it was processed", extra={"source": upload.uri})
        return {"outcome": "superseded"}
    metrics.add_metric(name="RecordingsTranscribed", unit=MetricUnit.Count, value=1)
    metrics.add_metric(
        name="TranscriptionSeconds", unit=MetricUnit.Seconds, value=time.perf_counter() - started
    )
    logger.info("transcribed", extra={"source": upload.uri, "transcript_key": transcript_key})
    return {"outcome": "transcribed", "transcript_key": transcript_key}


def _transcribe_recording(upload: S3ObjectEvent, ref: storage_layout.RecordingRef) -> str:
    if ref.extension not in storage_layout.AUDIO_EXTENSIONS:
        raise RejectedRecordingError(
            "unsupported_extension",
            f"extension .{ref.extension} is not audio; upload one of "
            f"{', '.join(storage_layout.AUDIO_EXTENSIONS)}",
            "InvalidKeyError",
        )
    limits = input_limits()
    s3 = aws_clients.s3_client()
    data = _download(s3, upload, limits.max_upload_bytes)
    try:
        audio = decode_audio(
            data,
            name=upload.key,
            max_seconds=limits.max_audio_seconds,
            max_bytes=limits.max_upload_bytes,
        )
    except AudioDecodeError as exc:
        raise RejectedRecordingError(
            _audio_error_code(exc), exc.reason, type(exc).__name__
        ) from exc
    metrics.add_metric(
        name="AudioSecondsTranscribed", unit=MetricUnit.Seconds, value=audio.duration
    )

    transcribe_started = time.perf_counter()
    transcript = transcriber_from_environment().transcribe(audio, transcript_id=ref.recording_id)
    transcribe_seconds = time.perf_counter() - transcribe_started
    bucket = resource_name("TRANSCRIPTS_BUCKET")
    with _storage_errors_are_transient(f"writing the transcript of {upload.uri}"):
        keys = write_transcript(
            s3,
            bucket,
            ref.tenant,
            ref.recording_id,
            transcript,
            metadata=_source_metadata(upload),
        )
        _remove_stale_error_record(s3, bucket, ref)
    # After the user's transcript is stored; never raises (see functions.learning.shadow).
    run_shadow(audio, transcript, transcribe_seconds, ref)
    return keys["json"]


def _download(s3: S3Client, upload: S3ObjectEvent, max_bytes: int) -> bytes:
    """The object's bytes, refusing oversize objects before reading the body."""
    request: dict[str, Any] = {"Bucket": upload.bucket, "Key": upload.key}
    if upload.version_id:
        request["VersionId"] = upload.version_id
    elif upload.etag:
        request["IfMatch"] = f'"{upload.etag}"'
    try:
        response = s3.get_object(**request)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in _MISSING_OBJECT_CODES:
            raise RejectedRecordingError(
                "source_missing",
                f"the object was deleted before it could be transcribed ({code})",
                "ClientError",
            ) from exc
        if code in _SUPERSEDED_CODES:
            raise UploadSupersededError(upload.uri) from exc
        raise TransientStorageError(f"reading {upload.uri}: {code or exc}") from exc
    except BotoCoreError as exc:
        raise TransientStorageError(f"reading {upload.uri}: {exc}") from exc

    body = response["Body"]
    size = int(response.get("ContentLength", 0))
    if size > max_bytes:
        body.close()
        raise RejectedRecordingError(
            "audio_too_large",
            f"{size} bytes is over the {max_bytes}-byte limit",
            "AudioTooLargeError",
        )
    with _storage_errors_are_transient(f"reading {upload.uri}"):
        try:
            data = body.read(max_bytes + 1)
        finally:
            body.close()
    if len(data) < size:
        raise TransientStorageError(f"reading {upload.uri}: got {len(data)} of {size} bytes")
    return data


def _with_identity(upload: S3ObjectEvent) -> S3ObjectEvent:
    """Fill in the ETag when a producer left both it and the version id out.

    Without either, every upload to one key would share an idempotency key and a re-upload would be
    skipped as a duplicate.
    """
    if upload.etag or upload.version_id:
        return upload
    try:
        head = aws_clients.s3_client().head_object(Bucket=upload.bucket, Key=upload.key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code", "") in _MISSING_OBJECT_CODES:
            return upload  # the download step records it as missing
        raise TransientStorageError(f"reading {upload.uri}: {exc}") from exc
    return upload.model_copy(
        update={
            "etag": head.get("ETag", "").strip('"') or None,
            "version_id": head.get("VersionId"),
        }
    )


def _reject(
    source: ErrorSource, ref: storage_layout.RecordingRef | None, rejection: RejectedRecordingError
) -> str:
    """Write the error record (a write failure is transient and raises) and return its key."""
    record = ErrorRecord(
        code=rejection.code,
        reason=rejection.reason,
        error_type=rejection.error_type,
        source=source,
        tenant=ref.tenant if ref else None,
        recording_id=ref.recording_id if ref else None,
        function=SERVICE,
    )
    with _storage_errors_are_transient("writing an error record"):
        key = write_error_record(
            aws_clients.s3_client(), resource_name("TRANSCRIPTS_BUCKET"), record
        )
    metrics.add_metric(name="RecordingsRejected", unit=MetricUnit.Count, value=1)
    logger.warning(
        "rejected upload",
        extra={"code": rejection.code, "reason": rejection.reason, "error_key": key},
    )
    return key


def _remove_stale_error_record(s3: S3Client, bucket: str, ref: storage_layout.RecordingRef) -> None:
    """A recording that now transcribes must not keep an error record from an earlier bad upload."""
    key = storage_layout.error_key(ref.tenant, ref.recording_id)
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code", "") in _MISSING_OBJECT_CODES:
            return
        raise
    s3.delete_object(Bucket=bucket, Key=key)


def _audio_error_code(exc: AudioDecodeError) -> ErrorCode:
    for error_type, code in _AUDIO_ERROR_CODES:
        if isinstance(exc, error_type):
            return code
    return "undecodable_audio"


def _source_metadata(upload: S3ObjectEvent) -> dict[str, str]:
    metadata = {"source-bucket": upload.bucket, "source-key": upload.key}
    if upload.etag:
        metadata["source-etag"] = upload.etag
    if upload.version_id:
        metadata["source-version-id"] = upload.version_id
    return metadata


@contextmanager
def _storage_errors_are_transient(action: str) -> Iterator[None]:
    try:
        yield
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        raise TransientStorageError(f"{action}: {code or exc}") from exc
    except BotoCoreError as exc:
        raise TransientStorageError(f"{action}: {exc}") from exc
