"""The batch function with a candidate on the shadow channel: real uploads, real SQS messages.

What users get must not change in any way because a shadow model ran (or failed) beside stable.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from functions.distribution.service import DistributionService
from functions.distribution.signing import generate_signing_key
from functions.fleet.registry import DeviceRegistry
from functions.learning.job_store import JobStore
from functions.learning.promotion import PromotionPolicy, PromotionReader, advance
from functions.learning.records import JobRecord, ShadowResult
from functions.learning.shadow import SAMPLE_PERCENT_VARIABLE
from models.runtime import storage_layout
from models.runtime.transcript import ModelRef, Transcript
from tests.functions.batch_stack import BatchStack, emitted_metrics
from tests.functions.learning.loop_models import (
    publish_shadow_candidate,
    publish_stable,
    stage_candidate,
)


@pytest.fixture
def service(batch_stack: BatchStack, tmp_path: Path) -> DistributionService:
    signer = generate_signing_key(tmp_path / "keys" / "signing.pem")
    service = DistributionService(batch_stack.s3, batch_stack.names.models_bucket, signer=signer)
    publish_stable(service)
    publish_shadow_candidate(service, tmp_path)
    return service


def _transcribe(stack: BatchStack, key: str, body: bytes) -> None:
    stack.upload(key, body)
    assert stack.invoke(stack.event(stack.receive(1))) == {"batchItemFailures": []}


def _user_visible(stack: BatchStack, recording_id: str) -> dict[str, Any]:
    """Everything a user can read about one transcript, minus what differs per run by nature
    (the id is the recording id; timings are wall-clock; metadata names the source key)."""
    visible: dict[str, Any] = {}
    for fmt in ("txt", "srt", "vtt", "json"):
        key = storage_layout.transcript_key("acme", recording_id, fmt)
        response = stack.s3.get_object(Bucket=stack.names.transcripts_bucket, Key=key)
        body = response["Body"].read()
        metadata = dict(response["Metadata"])
        metadata.pop("source-key")
        if fmt == "json":
            document = json.loads(body)
            document.pop("id")
            document.pop("timings")
            visible[fmt] = document
        else:
            visible[fmt] = body
        visible[f"{fmt}-meta"] = (response["ContentType"], metadata)
    return visible


def test_shadow_result_is_stored_apart_and_the_users_transcript_is_unchanged(
    batch_stack: BatchStack,
    service: DistributionService,
    speech_wav: bytes,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(SAMPLE_PERCENT_VARIABLE, "0")
    _transcribe(batch_stack, "recordings/acme/plain.wav", speech_wav)
    monkeypatch.setenv(SAMPLE_PERCENT_VARIABLE, "100")
    _transcribe(batch_stack, "recordings/acme/shadowed.wav", speech_wav)

    assert _user_visible(batch_stack, "shadowed") == _user_visible(batch_stack, "plain")
    assert batch_stack.object_keys("shadow/") == ["shadow/acme/shadowed.v2.json"]
    assert not any(".v2" in key for key in batch_stack.object_keys("transcripts/"))
    result = ShadowResult.model_validate_json(batch_stack.read("shadow/acme/shadowed.v2.json"))
    transcript = Transcript.model_validate_json(batch_stack.read("transcripts/acme/shadowed.json"))
    assert result.stable.text == transcript.text
    assert result.stable.model == transcript.model == ModelRef(name="edgescribe-edge", version=1)
    assert result.shadow.model == ModelRef(name="edgescribe-edge", version=2)
    assert result.recording_key == "recordings/acme/shadowed.wav"
    assert 0 < result.stable.seconds <= transcript.timings.total + 0.5


def test_corrupt_shadow_model_leaves_the_transcript_and_counts_a_failure(
    batch_stack: BatchStack,
    service: DistributionService,
    speech_wav: bytes,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    bucket, key = batch_stack.names.models_bucket, storage_layout.model_key("edgescribe-edge", 2)
    good = batch_stack.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    batch_stack.s3.put_object(Bucket=bucket, Key=key, Body=bytes(len(good)))
    monkeypatch.setenv(SAMPLE_PERCENT_VARIABLE, "100")
    capsys.readouterr()

    _transcribe(batch_stack, "recordings/acme/call-9.wav", speech_wav)

    metrics = emitted_metrics(capsys.readouterr().out)
    assert metrics.get("ShadowFailures") == 1
    assert metrics.get("RecordingsTranscribed") == 1
    assert "ShadowResultsStored" not in metrics
    assert batch_stack.object_keys() == [
        "transcripts/acme/call-9.json",
        "transcripts/acme/call-9.srt",
        "transcripts/acme/call-9.txt",
        "transcripts/acme/call-9.vtt",
    ]
    transcript = Transcript.model_validate_json(batch_stack.read("transcripts/acme/call-9.json"))
    assert transcript.text
    assert batch_stack.idempotency_items()[0]["status"]["S"] == "COMPLETED"


def test_shadow_results_from_live_traffic_are_the_evidence_that_promotes_to_canary(
    batch_stack: BatchStack,
    speech_wav: bytes,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """The runner's documents and the decision's reader agree on keys, versions and models."""
    signer = generate_signing_key(tmp_path / "keys" / "signing.pem")
    service = DistributionService(batch_stack.s3, batch_stack.names.models_bucket, signer=signer)
    publish_stable(service)
    job_id = "retrain-2026-11-25"
    stage_candidate(batch_stack.s3, batch_stack.names.models_bucket, job_id, tmp_path)
    store = JobStore(batch_stack.s3, batch_stack.names.models_bucket)
    now = datetime.now(UTC)
    store.create(
        JobRecord(
            job_id=job_id, status="gate_passed", window="2026-11-25", created_at=now, updated_at=now
        )
    )
    reader = PromotionReader(
        batch_stack.s3,
        models_bucket=batch_stack.names.models_bucket,
        transcripts_bucket=batch_stack.names.transcripts_bucket,
        feedback_bucket=batch_stack.names.feedback_bucket,
        devices=DeviceRegistry(batch_stack.dynamodb, batch_stack.names.devices_table),
    )
    # Latency is measured, not controlled, here: the ratio limit is left wide so that a busy
    # machine cannot fail the test; test_promotion checks the latency rule on chosen numbers.
    policy = PromotionPolicy(min_shadow_samples=2, max_latency_ratio=1000.0)
    [job] = store.active()
    assert advance(job, jobs=store, service=service, reader=reader, policy=policy).to_status == (
        "shadow"
    )

    monkeypatch.setenv(SAMPLE_PERCENT_VARIABLE, "100")
    _transcribe(batch_stack, "recordings/acme/live-1.wav", speech_wav)
    _transcribe(batch_stack, "recordings/beta/live-2.wav", speech_wav)
    decision = advance(job, jobs=store, service=service, reader=reader, policy=policy)

    assert (decision.action, decision.to_status) == ("promote", "canary")
    assert decision.evidence["samples"] == 2
    mean_disagreement = decision.evidence["mean_disagreement"]
    assert mean_disagreement is not None
    assert mean_disagreement < 0.5  # same training run: the models mostly agree
