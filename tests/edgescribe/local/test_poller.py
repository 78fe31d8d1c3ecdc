"""The event-source poller does what Lambda's SQS event source mapping does."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_lambda_powertools.utilities.parser.models import SqsModel

from edgescribe import settings
from edgescribe.local.poller import SqsEventSourcePoller
from tests.functions.batch_stack import BatchStack


class RecordingHandler:
    """A handler that remembers its events and fails the messages whose body says so."""

    def __init__(self, *, raises: bool = False, unknown_id: bool = False) -> None:
        self.events: list[dict[str, Any]] = []
        self.raises = raises
        self.unknown_id = unknown_id

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        self.events.append(event)
        if self.raises:
            raise RuntimeError("handler crashed")
        failures = [
            {"itemIdentifier": record["messageId"]}
            for record in event["Records"]
            if record["body"] == "fail"
        ]
        if self.unknown_id:
            failures.append({"itemIdentifier": "not-in-this-batch"})
        return {"batchItemFailures": failures}


def _poller(stack: BatchStack, handler: Any, **options: Any) -> SqsEventSourcePoller:
    # visibility_timeout 0: a failed message is visible again at once, so no test sleeps.
    settings_for_test: dict[str, Any] = {"wait_seconds": 1, "visibility_timeout": 0, **options}
    return SqsEventSourcePoller(
        queue_url=stack.resources.queue_url,
        queue_arn=stack.resources.queue_arn,
        handler=handler,
        endpoint_url=stack.resources.endpoint_url,
        **settings_for_test,
    )


def _send(stack: BatchStack, *bodies: str) -> None:
    for body in bodies:
        stack.sqs.send_message(QueueUrl=stack.resources.queue_url, MessageBody=body)


def _queued(stack: BatchStack, url: str) -> int:
    attributes = stack.sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


def test_event_has_lambdas_sqs_shape(provisioned: BatchStack) -> None:
    handler = RecordingHandler()
    _send(provisioned, "hello")

    _poller(provisioned, handler).poll_once()

    [event] = handler.events
    parsed = SqsModel.model_validate(event)  # powertools' model of Lambda's SQS event
    assert parsed.Records[0].body == "hello"
    assert parsed.Records[0].eventSourceARN == provisioned.resources.queue_arn
    assert parsed.Records[0].attributes.ApproximateReceiveCount == "1"


def test_only_successful_messages_are_deleted(provisioned: BatchStack) -> None:
    handler = RecordingHandler()
    _send(provisioned, "ok-1", "fail", "ok-2")
    poller = _poller(provisioned, handler)

    received: list[str] = []
    while len(received) < 3:
        received += poller.poll_once().received
    assert _queued(provisioned, provisioned.resources.queue_url) == 1

    poller.poll_once()
    retried = [record["body"] for record in handler.events[-1]["Records"]]
    assert retried == ["fail"]
    assert handler.events[-1]["Records"][0]["attributes"]["ApproximateReceiveCount"] == "2"


def test_handler_that_raises_fails_the_whole_batch(provisioned: BatchStack) -> None:
    _send(provisioned, "a", "b")
    poller = _poller(provisioned, RecordingHandler(raises=True))

    result = poller.poll_once()

    assert sorted(result.failed) == sorted(result.received)
    assert _queued(provisioned, provisioned.resources.queue_url) == 2
    assert poller.stats.handler_errors == 1


def test_response_naming_a_foreign_message_fails_the_whole_batch(provisioned: BatchStack) -> None:
    _send(provisioned, "a")
    poller = _poller(provisioned, RecordingHandler(unknown_id=True))

    result = poller.poll_once()

    assert result.failed == result.received
    assert _queued(provisioned, provisioned.resources.queue_url) == 1


def test_message_that_keeps_failing_moves_to_the_dlq_after_max_receive_count(
    provisioned: BatchStack, speech_wav: bytes
) -> None:
    """The real batch handler, a notification for a bucket that does not exist: a transient
    failure on every receive, until SQS's redrive moves it to the dead-letter queue."""
    from functions.batch_transcription import handler

    provisioned.upload("recordings/acme/x.wav", speech_wav)
    [message] = provisioned.receive(1)
    body = json.loads(message["Body"])
    body["Records"][0]["s3"]["bucket"]["name"] = "edgescribe-bucket-that-is-gone"
    provisioned.sqs.delete_message(
        QueueUrl=provisioned.resources.queue_url, ReceiptHandle=message["ReceiptHandle"]
    )
    _send(provisioned, json.dumps(body))
    poller = _poller(provisioned, handler)

    attempts = 0
    for _ in range(settings.MAX_RECEIVE_COUNT + 1):  # the last receive triggers the redrive
        attempts += len(poller.poll_once().received)
    assert attempts == settings.MAX_RECEIVE_COUNT
    dead = provisioned.sqs.receive_message(
        QueueUrl=provisioned.resources.dlq_url, WaitTimeSeconds=1
    )["Messages"]
    assert [json.loads(m["Body"]) for m in dead] == [body]
    assert _queued(provisioned, provisioned.resources.queue_url) == 0
    assert provisioned.object_keys() == []  # nothing written for it: it is waiting in the DLQ


def test_poller_thread_stops_when_asked(provisioned: BatchStack) -> None:
    handler = RecordingHandler()
    poller = _poller(provisioned, handler)

    with poller:
        assert poller.running
    assert not poller.running


@pytest.mark.parametrize(
    ("option", "value"), [("batch_size", 0), ("batch_size", 11), ("wait_seconds", 21)]
)
def test_settings_outside_sqs_limits_are_refused(
    provisioned: BatchStack, option: str, value: int
) -> None:
    with pytest.raises(ValueError, match=option):
        _poller(provisioned, RecordingHandler(), **{option: value})
