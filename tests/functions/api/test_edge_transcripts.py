"""``POST /v1/devices/{id}/transcripts``: offline transcripts reach the cloud once, intact, only from
their own device, and never overwrite anything."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from functions.api.edge_transcript_store import MAX_STORED_ERROR_CHARS
from functions.api.schemas import MAX_EDGE_TRANSCRIPT_BYTES
from functions.common.transcript_store import write_transcript
from models.runtime import storage_layout, writers
from models.runtime.transcript import AudioInfo, ModelRef, Segment, Transcript, Word
from tests.functions.api.conftest import Api, ApiResponse

DEVICE = "kiosk-7"
PRODUCED_AT = "2026-11-20T08:15:00+00:00"


def _transcript(transcript_id: str = "edge-1", text: str = "turn the lights on") -> Transcript:
    words = [
        Word(word=word, start=0.3 * n, end=0.3 * n + 0.25, confidence=0.9)
        for n, word in enumerate(text.split())
    ]
    return Transcript(
        id=transcript_id,
        text=text,
        segments=[Segment(start=0.0, end=words[-1].end, text=text, words=words)],
        model=ModelRef(name="edgescribe-edge", version=3),
        engine="onnxruntime-edge",
        audio=AudioInfo(duration=2.0, sample_rate=16000),
    )


def _body(transcript: Transcript | None = None, **overrides: Any) -> dict[str, Any]:
    """The body exactly as ``edge.router`` queues it (device_id included)."""
    body: dict[str, Any] = {
        "device_id": DEVICE,
        "transcript": (transcript or _transcript()).model_dump(mode="json"),
        "produced_at": PRODUCED_AT,
        "cloud_error": "offline mode",
    }
    body.update(overrides)
    return body


def _upload(
    api: Api,
    body: Any,
    *,
    device: str = DEVICE,
    subject: str = DEVICE,
    role: str = "device",
    tenant: str = "acme",
    key: str | None = "transcript:kiosk-7:edge-1",
) -> ApiResponse:
    return api.call(
        "POST",
        f"/v1/devices/{device}/transcripts",
        token=api.token(role, subject, tenant),
        json_body=body,
        headers={"idempotency-key": key} if key is not None else None,
    )


def _stored_keys(api: Api, tenant: str = "acme") -> list[str]:
    return api.stack.object_keys(f"transcripts/{tenant}/")


def _versions(api: Api, key: str) -> int:
    listing = api.stack.s3.list_object_versions(
        Bucket=api.stack.names.transcripts_bucket, Prefix=key
    )
    return len([v for v in listing.get("Versions", []) if v["Key"] == key])


def test_offline_transcript_is_stored_in_every_format_with_its_edge_engine(api: Api) -> None:
    transcript = _transcript()
    response = _upload(api, _body(transcript))
    assert response.status == 201, response.body
    receipt = response.json()
    assert receipt == {
        "transcript_id": "edge-1",
        "device_id": DEVICE,
        "produced_at": "2026-11-20T08:15:00Z",
        "received_at": receipt["received_at"],
        "status_url": "/v1/transcriptions/edge-1",
    }
    assert response.headers["Location"] == "/v1/transcriptions/edge-1"
    assert "Idempotent-Replayed" not in response.headers
    stored = Transcript.model_validate(
        api.stack.read_json(storage_layout.transcript_key("acme", "edge-1", "json"))
    )
    assert stored == transcript
    assert stored.engine == "onnxruntime-edge"
    for fmt in ("txt", "srt", "vtt"):
        key = storage_layout.transcript_key("acme", "edge-1", fmt)
        assert api.stack.read(key).decode() == writers.render(transcript, fmt)
    head = api.stack.s3.head_object(
        Bucket=api.stack.names.transcripts_bucket,
        Key=storage_layout.transcript_key("acme", "edge-1", "json"),
    )
    assert head["Metadata"]["device-id"] == DEVICE
    assert head["Metadata"]["cloud-error"] == "offline mode"
    # An app of the tenant reads it back like any transcription, and corrections can refer to it.
    status = api.call("GET", "/v1/transcriptions/edge-1", token=api.token("app")).json()
    assert status["status"] == "completed"
    assert status["transcript"]["text"] == "turn the lights on"


def test_a_retry_gets_the_same_receipt_and_is_stored_once(api: Api) -> None:
    first = _upload(api, _body())
    again = _upload(api, _body())
    assert (first.status, again.status) == (201, 201)
    assert again.body == first.body
    assert again.headers["Idempotent-Replayed"] == "true"
    assert _versions(api, storage_layout.transcript_key("acme", "edge-1", "json")) == 1
    assert _versions(api, storage_layout.transcript_key("acme", "edge-1", "srt")) == 1
    # The same upload under a fresh Idempotency-Key (a rebuilt outbox) is still the same upload.
    rekeyed = _upload(api, _body(), key="transcript:kiosk-7:edge-1:again")
    assert (rekeyed.status, rekeyed.body) == (201, first.body)


def test_different_content_under_a_stored_id_is_a_conflict_and_changes_nothing(api: Api) -> None:
    assert _upload(api, _body()).status == 201
    json_key = storage_layout.transcript_key("acme", "edge-1", "json")
    before = api.stack.read(json_key)
    reused_key = _upload(api, _body(_transcript(text="turn the lights off")))
    assert reused_key.status == 409
    assert "Idempotency-Key 'transcript:kiosk-7:edge-1' was already used" in reused_key.detail
    other_key = _upload(api, _body(cloud_error="timeout"), key="transcript:kiosk-7:other")
    assert other_key.status == 409
    assert "already stored with different content" in other_key.detail
    assert api.stack.read(json_key) == before
    assert _versions(api, json_key) == 1
    srt = api.stack.read(storage_layout.transcript_key("acme", "edge-1", "srt")).decode()
    assert srt == writers.render(_transcript(), "srt")


def test_a_device_cannot_overwrite_a_transcript_the_cloud_made(api: Api) -> None:
    cloud = _transcript("job-42", "the cloud heard this").model_copy(
        update={"engine": "onnxruntime-cloud"}
    )
    write_transcript(
        api.stack.s3,
        api.stack.names.transcripts_bucket,
        "acme",
        "job-42",
        cloud,
        metadata={"source": "api-sync"},
    )
    response = _upload(api, _body(_transcript("job-42")))
    assert response.status == 409
    assert "a transcript the cloud made" in response.detail
    stored = api.stack.read_json(storage_layout.transcript_key("acme", "job-42", "json"))
    assert stored["engine"] == "onnxruntime-cloud"
    assert api.stack.read(storage_layout.transcript_key("acme", "job-42", "txt")).decode() == (
        "the cloud heard this\n"
    )


def test_the_same_transcript_id_in_two_tenants_never_collides(api: Api) -> None:
    assert _upload(api, _body()).status == 201
    other = _upload(api, _body(device_id="unit-1"), device="unit-1", subject="unit-1", tenant="b2")
    assert other.status == 201, other.body
    assert _stored_keys(api, "b2") == sorted(
        f"transcripts/b2/edge-1.{f}" for f in writers.OUTPUT_FORMATS
    )


@pytest.mark.parametrize(
    ("role", "subject", "message"),
    [
        ("app", "user-1", "role 'app' may not do this"),
        ("admin", "ops", "role 'admin' may not do this"),
        ("device", "kiosk-8", "a device may only act as itself"),
    ],
)
def test_only_the_device_itself_may_upload_its_transcripts(
    api: Api, role: str, subject: str, message: str
) -> None:
    response = _upload(api, _body(), role=role, subject=subject)
    assert response.status == 403
    assert message in response.detail
    assert _stored_keys(api) == []


def test_refuses_uploads_without_a_valid_token(api: Api) -> None:
    response = api.call("POST", f"/v1/devices/{DEVICE}/transcripts", token=None, json_body=_body())
    assert response.status == 401
    forged = api.call(
        "POST", f"/v1/devices/{DEVICE}/transcripts", token="not.a.jwt", json_body=_body()
    )
    assert forged.status == 401
    assert _stored_keys(api) == []


def test_a_device_id_of_another_tenant_is_not_found(api: Api) -> None:
    assert _upload(api, _body()).status == 201  # kiosk-7 is now acme's
    hijack = _upload(api, _body(_transcript("edge-2")), tenant="globex")
    assert hijack.status == 404
    assert "no device 'kiosk-7' in your tenant" in hijack.detail
    assert _stored_keys(api, "globex") == []


def test_a_body_naming_another_device_is_refused(api: Api) -> None:
    response = _upload(api, _body(device_id="kiosk-8"))
    assert response.status == 422
    assert "does not match" in response.detail
    assert _stored_keys(api) == []


@pytest.mark.parametrize(
    "hostile_id",
    ["../models/channels/stable", "a/b", "..", "", ".hidden", "x" * 200, "edge 1", "\x00", "😀"],
)
def test_rejects_hostile_transcript_ids(api: Api, hostile_id: str) -> None:
    body = _body()
    body["transcript"]["id"] = hostile_id
    response = _upload(api, body)
    assert response.status == 422
    assert "invalid transcript id" in response.detail
    assert api.stack.object_keys() == []


@pytest.mark.parametrize("raw_id", ["..", "..%2Fchannels", "%2e%2e%2fx", "dev 1", "-" * 200])
def test_rejects_hostile_device_ids_in_the_path(api: Api, raw_id: str) -> None:
    response = _upload(api, _body(device_id=None), device=raw_id, subject=raw_id)
    assert response.status == 400
    assert "invalid device id" in response.detail


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda b: b.pop("transcript"), "transcript"),
        (lambda b: b.pop("produced_at"), "produced_at"),
        (lambda b: b.update(produced_at="2026-11-20T08:15:00"), "timezone"),
        (lambda b: b.update(uploaded_by="me"), "uploaded_by"),
        (lambda b: b["transcript"].update(engine="triton"), "a device uploads only"),
        (lambda b: b["transcript"].update(engine="gpu-9000"), "engine"),
        (lambda b: b["transcript"]["segments"][0].update(end=1e308), "segment spans"),
        (lambda b: b["transcript"]["segments"][0].update(start=-1.0), "segment spans"),
        (
            lambda b: b["transcript"]["segments"][0]["words"][1].update(start=0.6, end=0.5),
            "word spans",
        ),
        (lambda b: b["transcript"]["audio"].update(duration=1e9), "duration"),
        (lambda b: b["transcript"].pop("text"), "text"),
    ],
)
def test_rejects_malformed_uploads(api: Api, mutate: Any, message: str) -> None:
    body = _body()
    mutate(body)
    response = _upload(api, body)
    assert response.status == 422, response.body
    assert message in response.detail
    assert api.stack.object_keys() == []


def test_rejects_non_finite_times_that_json_can_smuggle_in(api: Api) -> None:
    raw = json.dumps(_body()).replace('"end": 0.25', '"end": NaN', 1)
    assert "NaN" in raw
    response = api.call(
        "POST",
        f"/v1/devices/{DEVICE}/transcripts",
        token=api.token("device", DEVICE),
        body=raw.encode(),
        content_type="application/json",
    )
    assert response.status == 422
    assert "not a finite number" in response.detail


def test_an_overlong_cloud_error_is_truncated_not_a_lost_transcript(api: Api) -> None:
    body = _body(cloud_error="link down: " + "\u00e9\n" * 5000)
    assert _upload(api, body).status == 201
    again = _upload(api, body)
    assert (again.status, again.headers.get("Idempotent-Replayed")) == (201, "true")
    head = api.stack.s3.head_object(
        Bucket=api.stack.names.transcripts_bucket,
        Key=storage_layout.transcript_key("acme", "edge-1", "json"),
    )
    stored = head["Metadata"]["cloud-error"]
    assert stored.startswith("link down: %C3%A9%0A")
    assert len(stored) <= MAX_STORED_ERROR_CHARS
    assert stored.isascii()


def test_a_four_hour_transcript_with_word_times_fits_under_the_size_cap(api: Api) -> None:
    words = []
    for n in range(4 * 3600 * 150 // 60):  # four hours at 150 words a minute
        start = round(0.4 * n, 3)
        words.append(
            Word(word="seventeen", start=start, end=round(start + 0.317, 3), confidence=0.8731)
        )
    segments = [
        Segment(
            start=chunk[0].start,
            end=chunk[-1].end,
            text=" ".join(w.word for w in chunk),
            words=chunk,
        )
        for chunk in (words[i : i + 50] for i in range(0, len(words), 50))
    ]
    long = Transcript(
        id="long-1",
        text=" ".join(s.text for s in segments),
        segments=segments,
        model=ModelRef(name="edgescribe-edge", version=3),
        engine="onnxruntime-edge",
        audio=AudioInfo(duration=4 * 3600.0, sample_rate=16000),
    )
    response = _upload(api, _body(long), key="transcript:kiosk-7:long-1")
    assert response.status == 201, response.body[:300]
    assert api.stack.read(storage_layout.transcript_key("acme", "long-1", "srt")).startswith(b"1\n")


def test_rejects_an_oversize_upload_before_reading_it(api: Api) -> None:
    filler = "x" * (MAX_EDGE_TRANSCRIPT_BYTES // 3 + 1000)  # the text is in the body three times
    response = _upload(api, _body(_transcript(text=f"a {filler}")))
    assert response.status == 413
    assert "a transcript upload may be at most" in response.detail
    assert api.stack.object_keys() == []


@pytest.mark.parametrize("key", ["has space", "x" * 256, "caf\u00e9"])
def test_rejects_a_malformed_idempotency_key(api: Api, key: str) -> None:
    response = _upload(api, _body(), key=key)
    assert response.status == 422
    assert "idempotency-key" in response.detail.lower()
    assert api.stack.object_keys() == []


def test_rejects_malformed_json(api: Api) -> None:
    response = api.call(
        "POST",
        f"/v1/devices/{DEVICE}/transcripts",
        token=api.token("device", DEVICE),
        body=b'{"transcript": {',
        content_type="application/json",
    )
    assert response.status == 400
    assert response.json()["type"] == "urn:edgescribe:problem:malformed-json"


@pytest.mark.parametrize("same_content", [True, False])
def test_losing_the_race_for_an_id_never_leaves_mixed_formats(api: Api, same_content: bool) -> None:
    """Another upload stores the id between our check and our writes (injected at that exact
    moment with a botocore hook on a real client), so our .txt/.srt/.vtt land on top of the
    winner's and our conditional JSON write fails: the same content settles as a replay; different
    content is 409 and every format is the winner's again."""
    import boto3

    from functions.api.edge_transcript_store import store_edge_transcript
    from functions.api.problems import Conflict
    from functions.api.schemas import EdgeTranscriptUpload

    bucket = api.stack.names.transcripts_bucket
    ours = EdgeTranscriptUpload.model_validate(_body(_transcript(text="the loser says this")))
    theirs = ours if same_content else EdgeTranscriptUpload.model_validate(_body())
    racing: list[bool] = []

    def winner_stores_first(params: dict[str, Any], **_: Any) -> None:
        if not racing:  # our first write (the .txt): the winner stores everything just before
            racing.append(True)
            store_edge_transcript(
                api.stack.s3,
                bucket,
                tenant="acme",
                device_id=DEVICE,
                upload=theirs,
                idempotency_key="theirs",
                now=datetime.now(UTC),
            )

    client = boto3.session.Session().client("s3")
    client.meta.events.register("before-call.s3.PutObject", winner_stores_first)

    def store() -> Any:
        return store_edge_transcript(
            client,
            bucket,
            tenant="acme",
            device_id=DEVICE,
            upload=ours,
            idempotency_key="ours",
            now=datetime.now(UTC),
        )

    winner = theirs.transcript
    if same_content:
        assert store().replayed
    else:
        with pytest.raises(Conflict):
            store()
    assert racing == [True]
    for fmt in ("json", "srt", "vtt", "txt"):
        key = storage_layout.transcript_key("acme", "edge-1", fmt)
        assert api.stack.read(key).decode() == writers.render(winner, fmt), fmt
