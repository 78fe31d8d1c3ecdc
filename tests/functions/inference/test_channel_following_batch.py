"""The batch function with ``EDGESCRIBE_MODEL_CHANNEL=stable``: real uploads, real SQS messages,
real models, and a promote to stable that reaches the cloud's transcripts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from edgescribe.samples import Sample
from functions.distribution.service import DistributionService
from functions.distribution.signing import generate_signing_key
from functions.inference.channel_following import ChannelFollowingTranscriber
from functions.inference.selection import (
    MODEL_CHANNEL_TTL_VARIABLE,
    MODEL_CHANNEL_VARIABLE,
    transcriber_from_environment,
)
from functions.learning.shadow import SAMPLE_PERCENT_VARIABLE
from models.runtime import storage_layout
from models.runtime.artifacts import CLOUD_MODEL_NAME, released_model_dir
from models.runtime.audio import decode_audio
from models.runtime.transcriber import Transcriber
from models.runtime.transcript import ModelRef, Transcript
from tests.functions.batch_stack import BatchStack, emitted_metrics
from tests.functions.learning.loop_models import (
    CANDIDATE_VERSION,
    candidate_dir,
    publish_shadow_candidate,
    publish_stable,
)

V1 = ModelRef(name="edgescribe-edge", version=1)
V2 = ModelRef(name="edgescribe-edge", version=CANDIDATE_VERSION)


@pytest.fixture
def service(batch_stack: BatchStack, tmp_path: Path) -> DistributionService:
    signer = generate_signing_key(tmp_path / "keys" / "signing.pem")
    service = DistributionService(batch_stack.s3, batch_stack.names.models_bucket, signer=signer)
    publish_stable(service)
    return service


@pytest.fixture
def following(batch_stack: BatchStack, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The function's environment as infra sets it, with a zero TTL (every upload looks)."""
    monkeypatch.setenv(MODEL_CHANNEL_VARIABLE, "stable")
    monkeypatch.setenv(MODEL_CHANNEL_TTL_VARIABLE, "0")
    monkeypatch.setenv(SAMPLE_PERCENT_VARIABLE, "0")
    yield
    transcriber = transcriber_from_environment()
    assert isinstance(transcriber, ChannelFollowingTranscriber)
    transcriber.close()  # delete what this stack's container downloaded


def _promote_candidate_to_stable(service: DistributionService, root: Path) -> None:
    service.publish(candidate_dir(root))
    service.promote("stable", CANDIDATE_VERSION, actor="test", name="edgescribe-edge")


def _transcribe(stack: BatchStack, key: str, body: bytes) -> Transcript:
    stack.upload(key, body)
    assert stack.invoke(stack.event(stack.receive(1))) == {"batchItemFailures": []}
    ref = storage_layout.parse_recording_key(key)
    json_key = storage_layout.transcript_key(ref.tenant, ref.recording_id, "json")
    return Transcript.model_validate_json(stack.read(json_key))


def test_a_promote_to_stable_changes_the_model_of_the_next_batch_transcript(
    batch_stack: BatchStack,
    service: DistributionService,
    following: None,
    speech_wav: bytes,
    speech_sample: Sample,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    before = _transcribe(batch_stack, "recordings/acme/before.wav", speech_wav)
    _promote_candidate_to_stable(service, tmp_path)
    capsys.readouterr()
    after = _transcribe(batch_stack, "recordings/acme/after.wav", speech_wav)

    assert before.model == V1
    assert after.model == V2
    cloud = Transcriber.from_model_dir(released_model_dir(CLOUD_MODEL_NAME))
    expected = cloud.transcribe(decode_audio(speech_sample.path), transcript_id="x").text
    assert after.text == expected
    assert emitted_metrics(capsys.readouterr().out).get("ModelChannelSwaps") == 1


def test_shadow_stops_once_its_candidate_is_what_stable_serves(
    batch_stack: BatchStack,
    service: DistributionService,
    following: None,
    speech_wav: bytes,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    publish_shadow_candidate(service, tmp_path)
    monkeypatch.setenv(SAMPLE_PERCENT_VARIABLE, "100")
    on_trial = _transcribe(batch_stack, "recordings/acme/trial.wav", speech_wav)
    assert on_trial.model == V1
    assert batch_stack.object_keys("shadow/") == ["shadow/acme/trial.v2.json"]

    service.promote("stable", CANDIDATE_VERSION, actor="test", name="edgescribe-edge")
    promoted = _transcribe(batch_stack, "recordings/acme/promoted.wav", speech_wav)

    assert promoted.model == V2
    assert batch_stack.object_keys("shadow/") == ["shadow/acme/trial.v2.json"]


def test_a_corrupt_stable_model_never_reaches_the_user_and_is_counted(
    batch_stack: BatchStack,
    service: DistributionService,
    following: None,
    speech_wav: bytes,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _promote_candidate_to_stable(service, tmp_path)
    bucket, key = batch_stack.names.models_bucket, storage_layout.model_key("edgescribe-edge", 2)
    good = batch_stack.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    batch_stack.s3.put_object(Bucket=bucket, Key=key, Body=good[:-16] + bytes(16))
    capsys.readouterr()

    transcript = _transcribe(batch_stack, "recordings/acme/call-3.wav", speech_wav)

    assert transcript.model == V1
    assert transcript.text
    metrics = emitted_metrics(capsys.readouterr().out)
    assert metrics.get("ModelChannelFailures") == 1
    assert metrics.get("RecordingsTranscribed") == 1
    assert batch_stack.object_keys("errors/") == []
    assert batch_stack.idempotency_items()[0]["status"]["S"] == "COMPLETED"
