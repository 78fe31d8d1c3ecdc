"""A local stand-in for Lambda's SQS event source mapping: it feeds a queue to a handler.

moto cannot run Lambda functions (that needs Docker), so on one machine this poller does what the
event source mapping does in AWS, and the handler code is the same code that runs in Lambda:

1. long-poll ``ReceiveMessage`` (up to ``batch_size`` messages, ``visibility_timeout`` seconds);
2. build the Lambda SQS event (``Records[*]`` with ``messageId``, ``receiptHandle``, ``body``,
   ``attributes``, ``messageAttributes``, ``md5OfBody``, ``eventSource``, ``eventSourceARN``,
   ``awsRegion``) and call ``handler(event, context)`` with a ``LocalLambdaContext``;
3. read the partial-batch response (``ReportBatchItemFailures``): delete only the messages that
   succeeded. Failed ones are left alone, reappear when their visibility timeout ends, and after the
   queue's ``maxReceiveCount`` receives SQS moves them to the dead-letter queue.

As in Lambda, a handler that raises, or a response that is malformed or names a message that was not
in the batch, fails the whole batch.

The poller runs in a daemon thread; ``stop()`` returns after the poll in flight (at most
``wait_seconds`` plus the handler's run time).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from edgescribe.local.lambda_context import LocalLambdaContext
from edgescribe.local.moto_server import FAKE_CREDENTIALS

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageTypeDef

Handler = Callable[[dict[str, Any], Any], Any]

logger = logging.getLogger(__name__)

#: SQS's own limits for one ReceiveMessage call.
MAX_BATCH_SIZE = 10
MAX_WAIT_SECONDS = 20
#: Pause after the poll itself failed (the server went away), so a dead endpoint is not spun on.
_ERROR_BACKOFF_SECONDS = 1.0


@dataclass(frozen=True)
class PollerStats:
    """Running totals, for logs, the demo and tests."""

    batches: int = 0
    received: int = 0
    deleted: int = 0
    failed: int = 0
    handler_errors: int = 0
    poll_errors: int = 0


@dataclass(frozen=True)
class BatchResult:
    received: list[str] = field(default_factory=list)  # message ids
    failed: list[str] = field(default_factory=list)


class SqsEventSourcePoller:
    """Feeds ``queue_url`` to ``handler`` the way Lambda's event source mapping would."""

    def __init__(
        self,
        *,
        queue_url: str,
        queue_arn: str,
        handler: Handler,
        endpoint_url: str,
        region: str = "us-east-1",
        batch_size: int = MAX_BATCH_SIZE,
        wait_seconds: int = 1,
        visibility_timeout: int = 60,
        function_name: str = "edgescribe-local-function",
        function_timeout_seconds: float = 900.0,
        sqs_client: SQSClient | None = None,
    ) -> None:
        if not 1 <= batch_size <= MAX_BATCH_SIZE:
            raise ValueError(f"batch_size must be 1..{MAX_BATCH_SIZE}, got {batch_size}")
        if not 0 <= wait_seconds <= MAX_WAIT_SECONDS:
            raise ValueError(f"wait_seconds must be 0..{MAX_WAIT_SECONDS}, got {wait_seconds}")
        if visibility_timeout < 0:
            raise ValueError(f"visibility_timeout must be >= 0, got {visibility_timeout}")
        self.queue_url = queue_url
        self.queue_arn = queue_arn
        self.handler = handler
        self.region = region
        self.batch_size = batch_size
        self.wait_seconds = wait_seconds
        self.visibility_timeout = visibility_timeout
        self.function_name = function_name
        self.function_timeout_seconds = function_timeout_seconds
        self._sqs = sqs_client or _sqs_client(endpoint_url, region)
        self._stats = PollerStats()
        self._stats_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- one batch -------------------------------------------------------------------------------

    def poll_once(self) -> BatchResult:
        """Receive one batch, invoke the handler, delete what succeeded. Empty queue: no call."""
        response = self._sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=self.batch_size,
            WaitTimeSeconds=self.wait_seconds,
            VisibilityTimeout=self.visibility_timeout,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages = response.get("Messages", [])
        if not messages:
            return BatchResult()
        event = lambda_sqs_event(messages, queue_arn=self.queue_arn, region=self.region)
        ids = [message["MessageId"] for message in messages]
        handler_failed = False
        try:
            result = self.handler(event, self._context())
            failed = _failed_ids(result, ids)
        except Exception:
            logger.exception("handler raised: the whole batch of %d will be retried", len(ids))
            handler_failed = True
            failed = list(ids)
        succeeded = [message for message in messages if message["MessageId"] not in failed]
        for start in range(0, len(succeeded), MAX_BATCH_SIZE):
            chunk = succeeded[start : start + MAX_BATCH_SIZE]
            self._sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]}
                    for index, message in enumerate(chunk)
                ],
            )
        self._count(
            batches=1,
            received=len(ids),
            deleted=len(succeeded),
            failed=len(failed),
            handler_errors=int(handler_failed),
        )
        return BatchResult(received=ids, failed=failed)

    def _context(self) -> LocalLambdaContext:
        return LocalLambdaContext(
            function_name=self.function_name,
            timeout_seconds=self.function_timeout_seconds,
            region=self.region,
        )

    # --- the background thread ------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("poller already started")
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="sqs-event-source", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Ask the thread to finish after its current poll and wait for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                raise TimeoutError("the poller is still running a batch")
            self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self) -> SqsEventSourcePoller:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
            except Exception:
                logger.exception("polling %s failed; retrying", self.queue_url)
                self._count(poll_errors=1)
                self._stop.wait(_ERROR_BACKOFF_SECONDS)

    @property
    def stats(self) -> PollerStats:
        with self._stats_lock:
            return self._stats

    def _count(self, **increments: int) -> None:
        with self._stats_lock:
            current = self._stats
            self._stats = replace(
                current,
                **{name: getattr(current, name) + value for name, value in increments.items()},
            )


def lambda_sqs_event(
    messages: Sequence[MessageTypeDef], *, queue_arn: str, region: str
) -> dict[str, Any]:
    """The event Lambda's SQS event source passes a handler for these received messages.

    Spelled as Lambda spells it: camelCase keys, ``attributes`` as strings, message attributes as
    ``{stringValue, binaryValue, stringListValues, binaryListValues, dataType}``.
    """
    return {
        "Records": [
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message.get("Body", ""),
                "attributes": dict(message.get("Attributes", {})),
                "messageAttributes": {
                    name: {
                        "stringValue": value.get("StringValue"),
                        "binaryValue": value.get("BinaryValue"),
                        "stringListValues": list(value.get("StringListValues", [])),
                        "binaryListValues": list(value.get("BinaryListValues", [])),
                        "dataType": value.get("DataType"),
                    }
                    for name, value in message.get("MessageAttributes", {}).items()
                },
                "md5OfBody": message.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
            for message in messages
        ]
    }


def _failed_ids(response: Any, batch_ids: list[str]) -> list[str]:
    """Message ids the handler reported as failed; the whole batch when the response is unusable.

    Mirrors Lambda: no response (or one without ``batchItemFailures``) means every message
    succeeded; a malformed entry, or an id that was not in the batch, fails them all.
    """
    if response is None:
        return []
    if not isinstance(response, dict):
        logger.error("handler returned %r, not a dict: failing the batch", type(response).__name__)
        return list(batch_ids)
    failures = response.get("batchItemFailures")
    if failures is None:
        return []
    if not isinstance(failures, list):
        logger.error("batchItemFailures is not a list: failing the batch")
        return list(batch_ids)
    failed: list[str] = []
    for entry in failures:
        identifier = entry.get("itemIdentifier") if isinstance(entry, dict) else None
        if not isinstance(identifier, str) or identifier not in batch_ids:
            logger.error("batchItemFailures names %r, not in the batch: failing it", identifier)
            return list(batch_ids)
        failed.append(identifier)
    return failed


def _sqs_client(endpoint_url: str, region: str) -> SQSClient:
    import boto3

    client: SQSClient = boto3.session.Session(
        aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        region_name=region,
    ).client("sqs", endpoint_url=endpoint_url)
    return client
