"""Error records land at the layout's error keys; unroutable ones at a stable digest."""

from __future__ import annotations

from functions.common.error_records import ErrorRecord, ErrorSource, error_record_key


def _record(**fields: object) -> ErrorRecord:
    values: dict[str, object] = {
        "code": "corrupt_audio",
        "reason": "truncated",
        "error_type": "CorruptAudioError",
        "source": ErrorSource(bucket="b", key="recordings/t/x.wav", etag="e"),
        "function": "test",
    }
    values.update(fields)
    return ErrorRecord.model_validate(values)


def test_routable_record_sits_beside_the_transcript() -> None:
    assert error_record_key(_record(tenant="t", recording_id="x")) == "errors/t/x.json"


def test_unroutable_record_key_is_stable_and_safe() -> None:
    hostile = ErrorSource(bucket="b", key="recordings/../../x.wav", etag="e")

    first = error_record_key(_record(source=hostile))
    again = error_record_key(_record(source=hostile))
    other = error_record_key(_record(source=ErrorSource(bucket="b", key="recordings/x.wav")))

    assert first == again  # a redelivered bad message overwrites its own record
    assert first != other
    assert first.startswith("errors/_unroutable/")
    assert ".." not in first
