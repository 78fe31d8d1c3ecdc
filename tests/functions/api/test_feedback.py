"""POST /v1/feedback: stored once under the feedback layout, with who/when/model, per tenant."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from functions.api.feedback_store import derive_feedback_id
from models.runtime import storage_layout
from models.runtime.transcript import AudioInfo, ModelRef, Segment, Transcript
from tests.functions.api.conftest import Api


def _store_transcript(
    api: Api, tenant: str, transcript_id: str, text: str = "the wether is clear"
) -> None:
    transcript = Transcript(
        id=transcript_id,
        text=text,
        segments=[Segment(start=0.0, end=1.0, text=text)],
        model=ModelRef(name="edgescribe-edge", version=7),
        engine="onnxruntime-cloud",
        audio=AudioInfo(duration=1.0, sample_rate=16_000),
    )
    api.stack.s3.put_object(
        Bucket=api.stack.names.transcripts_bucket,
        Key=storage_layout.transcript_key(tenant, transcript_id),
        Body=transcript.model_dump_json().encode(),
    )


def _feedback_objects(api: Api) -> dict[str, Any]:
    bucket = api.stack.names.feedback_bucket
    listing = api.stack.s3.list_objects_v2(Bucket=bucket)
    return {
        item["Key"]: json.loads(
            api.stack.s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
        )
        for item in listing.get("Contents", [])
    }


def test_feedback_is_stored_with_who_when_and_the_model_version(api: Api) -> None:
    _store_transcript(api, "acme", "tr-1")
    response = api.call(
        "POST",
        "/v1/feedback",
        json_body={"transcript_id": "tr-1", "corrected_text": "the weather is clear"},
    )
    assert response.status == 201, response.body
    receipt = response.json()
    assert receipt["duplicate"] is False
    assert receipt["model"] == {"name": "edgescribe-edge", "version": 7}
    [(key, record)] = _feedback_objects(api).items()
    received = datetime.fromisoformat(receipt["received_at"])
    assert key == storage_layout.feedback_key(receipt["feedback_id"], received)
    assert record["original_text"] == "the wether is clear"
    assert record["corrected_text"] == "the weather is clear"
    assert (record["tenant"], record["submitted_by"], record["role"]) == ("acme", "user-1", "app")
    assert record["model"] == {"name": "edgescribe-edge", "version": 7}


def test_a_retried_feedback_is_stored_once(api: Api) -> None:
    _store_transcript(api, "acme", "tr-1")
    body = {"transcript_id": "tr-1", "corrected_text": "fixed", "feedback_id": "outbox-42"}
    first = api.call("POST", "/v1/feedback", json_body=body)
    second = api.call("POST", "/v1/feedback", json_body=body)
    assert (first.status, second.status) == (201, 200)
    assert second.json()["duplicate"] is True
    assert second.json()["feedback_id"] == first.json()["feedback_id"]
    assert second.json()["received_at"] == first.json()["received_at"]
    assert len(_feedback_objects(api)) == 1


def test_without_an_id_the_same_correction_is_still_stored_once(api: Api) -> None:
    _store_transcript(api, "acme", "tr-1")
    body = {"transcript_id": "tr-1", "corrected_text": "fixed"}
    assert api.call("POST", "/v1/feedback", json_body=body).status == 201
    assert api.call("POST", "/v1/feedback", json_body=body).status == 200
    assert len(_feedback_objects(api)) == 1


def test_a_retry_days_later_lands_on_the_same_key_when_corrected_at_is_sent(api: Api) -> None:
    _store_transcript(api, "acme", "tr-1")
    corrected_at = (datetime.now(UTC) - timedelta(days=3)).isoformat()
    body = {
        "transcript_id": "tr-1",
        "corrected_text": "fixed",
        "feedback_id": "fb-9",
        "corrected_at": corrected_at,
    }
    receipt = api.call("POST", "/v1/feedback", json_body=body).json()
    [key] = _feedback_objects(api)
    assert key == storage_layout.feedback_key(
        receipt["feedback_id"], datetime.fromisoformat(corrected_at)
    )
    assert api.call("POST", "/v1/feedback", json_body=body).json()["duplicate"] is True


def test_rejects_a_reused_feedback_id_carrying_a_different_correction(api: Api) -> None:
    _store_transcript(api, "acme", "tr-1")
    api.call(
        "POST",
        "/v1/feedback",
        json_body={"transcript_id": "tr-1", "corrected_text": "a", "feedback_id": "x"},
    )
    response = api.call(
        "POST",
        "/v1/feedback",
        json_body={"transcript_id": "tr-1", "corrected_text": "b", "feedback_id": "x"},
    )
    assert response.status == 409
    assert "already used for a different correction" in response.detail
    [record] = _feedback_objects(api).values()
    assert record["corrected_text"] == "a"


def test_two_tenants_using_the_same_feedback_id_never_collide(api: Api) -> None:
    for tenant in ("acme", "globex"):
        _store_transcript(api, tenant, "tr-1")
        response = api.call(
            "POST",
            "/v1/feedback",
            token=api.token(tenant=tenant),
            json_body={
                "transcript_id": "tr-1",
                "corrected_text": f"by {tenant}",
                "feedback_id": "same",
            },
        )
        assert response.status == 201
    records = list(_feedback_objects(api).values())
    assert sorted(r["tenant"] for r in records) == ["acme", "globex"]
    assert derive_feedback_id("acme", "same", "", "") != derive_feedback_id(
        "globex", "same", "", ""
    )


def test_feedback_on_another_tenants_transcript_is_not_found(api: Api) -> None:
    _store_transcript(api, "globex", "tr-secret")
    response = api.call(
        "POST", "/v1/feedback", json_body={"transcript_id": "tr-secret", "corrected_text": "x"}
    )
    assert response.status == 404
    assert _feedback_objects(api) == {}


def test_feedback_on_a_device_made_transcript_carries_its_own_original(api: Api) -> None:
    response = api.call(
        "POST",
        "/v1/feedback",
        token=api.token("device", "dev-1"),
        json_body={
            "transcript_id": "edge-tr-5",
            "corrected_text": "turn off the lights",
            "original_text": "turn of the lights",
            "model": {"name": "edgescribe-edge", "version": 3},
        },
    )
    assert response.status == 201, response.body
    [record] = _feedback_objects(api).values()
    assert (record["original_text"], record["role"], record["engine"]) == (
        "turn of the lights",
        "device",
        None,
    )


def test_audio_ref_must_be_an_existing_recording_of_the_callers_tenant(api: Api) -> None:
    _store_transcript(api, "acme", "tr-1")
    own = storage_layout.recording_key("acme", "rec-1", "wav")
    api.stack.s3.put_object(Bucket=api.stack.names.recordings_bucket, Key=own, Body=b"RIFF")
    cases = {
        storage_layout.recording_key("globex", "rec-1", "wav"): "of your own tenant",
        "recordings/acme/../globex/rec-1.wav": "audio_ref",
        storage_layout.recording_key("acme", "missing", "wav"): "does not exist",
    }
    for audio_ref, message in cases.items():
        response = api.call(
            "POST",
            "/v1/feedback",
            json_body={"transcript_id": "tr-1", "corrected_text": "x", "audio_ref": audio_ref},
        )
        assert response.status == 422, audio_ref
        assert message in response.detail
    ok = api.call(
        "POST",
        "/v1/feedback",
        json_body={"transcript_id": "tr-1", "corrected_text": "x", "audio_ref": own},
    )
    assert ok.status == 201


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"transcript_id": "../../x", "corrected_text": "x"}, "invalid transcript id"),
        ({"transcript_id": "tr-1", "corrected_text": 5}, "corrected_text"),
        ({"transcript_id": "tr-1"}, "corrected_text"),
        (
            {"transcript_id": "tr-1", "corrected_text": "x", "feedback_id": "a/b"},
            "invalid feedback id",
        ),
        (
            {"transcript_id": "tr-1", "corrected_text": "x", "corrected_at": "2026-01-01T00:00:00"},
            "corrected_at",
        ),
        (
            {
                "transcript_id": "tr-1",
                "corrected_text": "x",
                "corrected_at": "2999-01-01T00:00:00Z",
            },
            "in the future",
        ),
        ({"transcript_id": "tr-1", "corrected_text": "x", "rating": 5}, "rating"),
    ],
)
def test_rejects_invalid_feedback_naming_the_field(
    api: Api, body: dict[str, Any], message: str
) -> None:
    _store_transcript(api, "acme", "tr-1")
    response = api.call("POST", "/v1/feedback", json_body=body)
    assert response.status == 422, response.body
    assert message in response.detail
    assert _feedback_objects(api) == {}


def test_rejects_malformed_json_and_non_json_bodies(api: Api) -> None:
    assert (
        api.call(
            "POST", "/v1/feedback", body=b'{"transcript_id": ', content_type="application/json"
        ).status
        == 400
    )
    assert (
        api.call(
            "POST", "/v1/feedback", body=b"\xff\xfe\x00", content_type="application/json"
        ).status
        == 400
    )
    assert (
        api.call(
            "POST", "/v1/feedback", body=b"a=b", content_type="application/x-www-form-urlencoded"
        ).status
        == 415
    )
    assert api.call("POST", "/v1/feedback", body=b"RIFF", content_type="audio/wav").status == 415
