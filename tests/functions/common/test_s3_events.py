"""Parsing S3 notifications leniently: moto's shape, S3's test event, SNS envelopes, bad bodies."""

from __future__ import annotations

import json

import pytest

from functions.common.s3_events import MalformedEventError, parse_notification


def _record(key: str, **object_fields: object) -> dict[str, object]:
    """A record as moto's server sends it: no userIdentity/requestParameters/sequencer."""
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "us-east-1",
        "eventTime": "2026-11-25T10:43:01.449Z",
        "eventName": "ObjectCreated:Put",
        "s3": {
            "s3SchemaVersion": "1.0",
            "bucket": {"name": "rec", "arn": "arn:aws:s3:::rec"},
            "object": {
                "key": key,
                "size": 2,
                "eTag": "9336ebf25087d91c818ee6e9ec29f8c1",
                **object_fields,
            },
        },
    }


def test_moto_record_without_optional_fields_is_accepted() -> None:
    notification = parse_notification(json.dumps({"Records": [_record("recordings%2Fa%2Fb.wav")]}))

    [upload] = notification.objects
    assert upload.bucket == "rec"
    assert upload.key == "recordings/a/b.wav"
    assert upload.etag == "9336ebf25087d91c818ee6e9ec29f8c1"
    assert upload.version_id is None


def test_key_is_decoded_exactly_once() -> None:
    """``+`` is a space; ``%252E`` must stay ``%2E`` so the key check sees what S3 stored."""
    body = json.dumps({"Records": [_record("recordings/t+1/a%2Bb%252E.wav")]})

    assert parse_notification(body).objects[0].key == "recordings/t 1/a+b%2E.wav"


def test_version_id_and_quoted_etag_are_normalised() -> None:
    body = json.dumps({"Records": [_record("k", eTag='"abc"', versionId="v1")]})

    upload = parse_notification(body).objects[0]
    assert (upload.etag, upload.version_id) == ("abc", "v1")
    assert upload.identity() == {"bucket": "rec", "key": "k", "etag": "abc", "version_id": "v1"}


def test_s3_test_event_is_recognised() -> None:
    body = json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "rec"})

    notification = parse_notification(body)
    assert notification.is_test_event
    assert notification.objects == []


def test_removal_events_are_ignored_not_transcribed() -> None:
    removed = {**_record("recordings/a/b.wav"), "eventName": "ObjectRemoved:Delete"}

    notification = parse_notification(json.dumps({"Records": [removed]}))
    assert notification.objects == []
    assert notification.ignored_events == ["ObjectRemoved:Delete"]


def test_sns_envelope_is_unwrapped() -> None:
    inner = json.dumps({"Records": [_record("recordings%2Fa%2Fb.wav")]})
    body = json.dumps({"Type": "Notification", "Message": inner})

    assert parse_notification(body).objects[0].key == "recordings/a/b.wav"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("{not json", "not JSON"),
        ("[1, 2]", "expected an object"),
        ('{"hello": 1}', "no 'Records'"),
        ('{"Records": [{"eventName": "ObjectCreated:Put"}]}', "record 0: s3"),
        (
            '{"Records": [{"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": "b"}, '
            '"object": {}}}]}',
            "s3.object.key",
        ),
        ('{"Type": "Notification", "Message": 5}', "SNS"),
    ],
)
def test_malformed_body_names_what_is_wrong(body: str, reason: str) -> None:
    with pytest.raises(MalformedEventError, match="malformed S3 event") as caught:
        parse_notification(body)
    assert reason in caught.value.reason
