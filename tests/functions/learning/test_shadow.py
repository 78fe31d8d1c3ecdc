"""The shadow runner against the moto server: real channels, real models in onnxruntime."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from edgescribe.samples import Sample
from functions.distribution.bucketing import rollout_bucket
from functions.distribution.service import DistributionService
from functions.distribution.signing import ManifestSigner, generate_signing_key
from functions.learning.records import ShadowResult
from functions.learning.shadow import (
    SAMPLE_PERCENT_VARIABLE,
    ShadowConfigurationError,
    ShadowRunner,
    run_shadow,
    sample_percent_from_environment,
)
from models.runtime import storage_layout
from models.runtime.artifacts import CLOUD_MODEL_NAME, released_model_dir
from models.runtime.audio import DecodedAudio, decode_audio
from models.runtime.scoring import cer
from models.runtime.transcriber import Transcriber
from models.runtime.transcript import ModelRef, Transcript
from tests.functions.batch_stack import BatchStack
from tests.functions.learning.loop_models import (
    CANDIDATE_VERSION,
    FakeMonotonic,
    publish_shadow_candidate,
    publish_stable,
)

REF = storage_layout.RecordingRef(tenant="acme", recording_id="call-7", extension="wav")
CANDIDATE = ModelRef(name="edgescribe-edge", version=CANDIDATE_VERSION)


@pytest.fixture(scope="module")
def audio(speech_sample: Sample) -> DecodedAudio:
    return decode_audio(speech_sample.path)


@pytest.fixture(scope="module")
def stable_transcript(audio: DecodedAudio) -> Transcript:
    """What the user got: the released edge model, as the batch function runs it."""
    transcriber = Transcriber.from_model_dir(engine="onnxruntime-cloud")
    return transcriber.transcribe(audio, transcript_id=REF.recording_id)


@pytest.fixture
def signer(tmp_path: Path) -> ManifestSigner:
    return generate_signing_key(tmp_path / "keys" / "signing.pem")


@pytest.fixture
def service(batch_stack: BatchStack, signer: ManifestSigner) -> DistributionService:
    service = DistributionService(batch_stack.s3, batch_stack.names.models_bucket, signer=signer)
    publish_stable(service)
    return service


@pytest.fixture
def work_dir(tmp_path: Path) -> Path:
    return tmp_path / "shadow-models"


def _runner(
    stack: BatchStack, work_dir: Path, percent: float = 100.0, **options: object
) -> ShadowRunner:
    return ShadowRunner(
        stack.s3,
        models_bucket=stack.names.models_bucket,
        transcripts_bucket=stack.names.transcripts_bucket,
        sample_percent=percent,
        work_dir=work_dir,
        clock=lambda: datetime(2026, 11, 25, 12, 0, tzinfo=UTC),
        **options,  # type: ignore[arg-type]
    )


def _files(folder: Path) -> list[Path]:
    return sorted(path for path in folder.rglob("*") if path.is_file()) if folder.exists() else []


def test_sampled_recording_is_shadowed_and_stored_apart_from_transcripts(
    batch_stack: BatchStack,
    service: DistributionService,
    audio: DecodedAudio,
    stable_transcript: Transcript,
    work_dir: Path,
    tmp_path: Path,
) -> None:
    publish_shadow_candidate(service, tmp_path)
    runner = _runner(batch_stack, work_dir)

    result = runner.run(audio, stable_transcript, 0.25, REF)

    assert result is not None
    assert batch_stack.object_keys() == ["shadow/acme/call-7.v2.json"]
    stored = ShadowResult.model_validate_json(batch_stack.read("shadow/acme/call-7.v2.json"))
    assert stored == result
    assert stored.recording_key == "recordings/acme/call-7.wav"
    assert stored.stable.model == ModelRef(name="edgescribe-edge", version=1)
    assert stored.stable.text == stable_transcript.text
    assert stored.stable.seconds == 0.25
    assert stored.shadow.model == CANDIDATE
    assert stored.shadow.seconds > 0
    # The candidate's bytes are the cloud model's: transcribing with it directly gives the same text.
    cloud = Transcriber.from_model_dir(released_model_dir(CLOUD_MODEL_NAME))
    assert stored.shadow.text == cloud.transcribe(audio, transcript_id="x").text
    assert stored.disagreement == pytest.approx(cer(stable_transcript.text, stored.shadow.text))
    assert stored.audio_seconds == pytest.approx(audio.duration, abs=0.001)
    assert runner.loaded_models == (CANDIDATE,)
    assert runner.stats.stored == 1


def test_unsampled_recording_never_loads_the_shadow_model(
    batch_stack: BatchStack,
    service: DistributionService,
    audio: DecodedAudio,
    stable_transcript: Transcript,
    work_dir: Path,
    tmp_path: Path,
) -> None:
    publish_shadow_candidate(service, tmp_path)
    key = next(
        f"recordings/acme/r{index}.wav"
        for index in range(1000)
        if rollout_bucket(f"recordings/acme/r{index}.wav", "shadow") >= 1000  # outside 10 %
    )
    ref = storage_layout.parse_recording_key(key)
    runner = _runner(batch_stack, work_dir, percent=10.0)

    assert runner.run(audio, stable_transcript, 0.25, ref) is None

    assert runner.loaded_models == ()
    assert _files(work_dir) == []
    assert batch_stack.object_keys() == []
    assert runner.stats.unsampled == 1


def test_sample_is_deterministic_monotonic_and_near_its_percentage(
    batch_stack: BatchStack, work_dir: Path
) -> None:
    keys = [f"recordings/t{index % 7}/{uuid.UUID(int=index).hex}.wav" for index in range(4000)]
    ten = {key for key in keys if _runner(batch_stack, work_dir, 10.0).in_sample(key)}
    again = {key for key in keys if _runner(batch_stack, work_dir, 10.0).in_sample(key)}
    fifty = {key for key in keys if _runner(batch_stack, work_dir, 50.0).in_sample(key)}

    assert ten == again  # a redelivered upload is sampled exactly as before
    assert ten < fifty  # widening the sample only adds recordings
    assert 0.08 < len(ten) / len(keys) < 0.12
    assert 0.46 < len(fifty) / len(keys) < 0.54


def test_no_shadow_channel_means_no_model_load(
    batch_stack: BatchStack,
    service: DistributionService,
    audio: DecodedAudio,
    stable_transcript: Transcript,
    work_dir: Path,
) -> None:
    runner = _runner(batch_stack, work_dir)

    assert runner.run(audio, stable_transcript, 0.25, REF) is None

    assert runner.loaded_models == ()
    assert _files(work_dir) == []
    assert batch_stack.object_keys() == []
    assert runner.stats.no_trial == 1


def test_rejected_candidate_rolled_back_to_stable_is_no_longer_shadowed(
    batch_stack: BatchStack,
    service: DistributionService,
    audio: DecodedAudio,
    stable_transcript: Transcript,
    work_dir: Path,
    tmp_path: Path,
) -> None:
    publish_shadow_candidate(service, tmp_path)
    service.rollback("shadow", actor="test", to_version=1, reason="too much disagreement")
    runner = _runner(batch_stack, work_dir)

    assert runner.run(audio, stable_transcript, 0.25, REF) is None
    assert runner.loaded_models == ()
    assert batch_stack.object_keys() == []


def test_the_model_that_served_the_user_is_not_shadowed_against_itself(
    batch_stack: BatchStack,
    service: DistributionService,
    audio: DecodedAudio,
    stable_transcript: Transcript,
    work_dir: Path,
    tmp_path: Path,
) -> None:
    publish_shadow_candidate(service, tmp_path)
    served_by_candidate = stable_transcript.model_copy(update={"model": CANDIDATE})
    runner = _runner(batch_stack, work_dir)

    assert runner.run(audio, served_by_candidate, 0.25, REF) is None
    assert runner.loaded_models == ()


@pytest.mark.parametrize(
    "damage",
    ["flipped-bytes", "truncated", "deleted"],
)
def test_corrupt_shadow_model_is_counted_and_stores_nothing(
    batch_stack: BatchStack,
    service: DistributionService,
    audio: DecodedAudio,
    stable_transcript: Transcript,
    work_dir: Path,
    tmp_path: Path,
    damage: str,
) -> None:
    publish_shadow_candidate(service, tmp_path)
    bucket, key = batch_stack.names.models_bucket, storage_layout.model_key("edgescribe-edge", 2)
    original = batch_stack.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    if damage == "flipped-bytes":  # same size, different sha256
        batch_stack.s3.put_object(Bucket=bucket, Key=key, Body=original[:-16] + bytes(16))
    elif damage == "truncated":
        batch_stack.s3.put_object(Bucket=bucket, Key=key, Body=original[: len(original) // 2])
    else:
        batch_stack.s3.delete_object(Bucket=bucket, Key=key)
    runner = _runner(batch_stack, work_dir)

    assert runner.run(audio, stable_transcript, 0.25, REF) is None
    assert runner.run(audio, stable_transcript, 0.25, REF) is None  # not retried at once

    assert runner.stats.failed == 2
    assert runner.loaded_models == ()
    assert batch_stack.object_keys() == []
    assert _files(work_dir) == []  # the half-downloaded model is cleaned up


def test_a_failed_shadow_model_is_retried_after_the_channel_ttl(
    batch_stack: BatchStack,
    service: DistributionService,
    audio: DecodedAudio,
    stable_transcript: Transcript,
    work_dir: Path,
    tmp_path: Path,
) -> None:
    publish_shadow_candidate(service, tmp_path)
    bucket, key = batch_stack.names.models_bucket, storage_layout.model_key("edgescribe-edge", 2)
    good = batch_stack.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    batch_stack.s3.put_object(Bucket=bucket, Key=key, Body=good[:-16] + bytes(16))
    monotonic = FakeMonotonic()
    runner = _runner(batch_stack, work_dir, monotonic=monotonic)
    assert runner.run(audio, stable_transcript, 0.25, REF) is None

    batch_stack.s3.put_object(Bucket=bucket, Key=key, Body=good)  # an operator repairs it
    assert runner.run(audio, stable_transcript, 0.25, REF) is None
    monotonic.now += 61
    assert runner.run(audio, stable_transcript, 0.25, REF) is not None

    assert runner.stats.failed == 2
    assert batch_stack.object_keys() == ["shadow/acme/call-7.v2.json"]


def test_channel_pointers_are_cached_for_the_ttl_then_reread(
    batch_stack: BatchStack,
    service: DistributionService,
    audio: DecodedAudio,
    stable_transcript: Transcript,
    work_dir: Path,
    tmp_path: Path,
) -> None:
    monotonic = FakeMonotonic()
    runner = _runner(batch_stack, work_dir, monotonic=monotonic)
    assert runner.run(audio, stable_transcript, 0.25, REF) is None  # no trial: cached as such

    publish_shadow_candidate(service, tmp_path)
    monotonic.now += 30
    assert runner.run(audio, stable_transcript, 0.25, REF) is None
    monotonic.now += 31
    assert runner.run(audio, stable_transcript, 0.25, REF) is not None


@pytest.mark.parametrize("raw", ["ten", "-1", "100.5", "nan"])
def test_a_bad_sample_percentage_names_the_variable(
    raw: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SAMPLE_PERCENT_VARIABLE, raw)
    with pytest.raises(ShadowConfigurationError, match=SAMPLE_PERCENT_VARIABLE):
        sample_percent_from_environment()


def test_misconfigured_shadow_never_raises_into_the_batch_function(
    batch_stack: BatchStack,
    audio: DecodedAudio,
    stable_transcript: Transcript,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(SAMPLE_PERCENT_VARIABLE, "lots")
    assert run_shadow(audio, stable_transcript, 0.25, REF) is None
    assert batch_stack.object_keys() == []


def test_default_sample_is_ten_percent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SAMPLE_PERCENT_VARIABLE, raising=False)
    assert sample_percent_from_environment() == 10.0
