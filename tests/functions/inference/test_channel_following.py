"""The cloud's in-process model follows the stable channel: real channels on the moto server, real
models in onnxruntime, a fake monotonic clock for the channel TTL.

Stable v1 is the released edge model (also the model baked into the function); v2 (and v3) are the
released cloud model's bytes under manifests naming them ``edgescribe-edge`` v2 (v3), as a
retraining job leaves them (``tests/functions/learning/loop_models``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from edgescribe.local.ports import free_port
from edgescribe.samples import Sample
from functions.distribution.service import DistributionService
from functions.distribution.signing import generate_signing_key
from functions.inference.channel_following import ChannelFollowingTranscriber
from functions.inference.selection import (
    MODEL_CHANNEL_TTL_VARIABLE,
    MODEL_CHANNEL_VARIABLE,
    InferenceConfigurationError,
    InferenceSettings,
    channel_following_transcriber,
    transcriber_from_environment,
)
from models.runtime import storage_layout
from models.runtime.artifacts import CLOUD_MODEL_NAME, released_model_dir
from models.runtime.audio import DecodedAudio, decode_audio
from models.runtime.backend import OnnxRuntimeBackend
from models.runtime.session import AcousticModel
from models.runtime.transcriber import Transcriber
from models.runtime.transcript import Engine, ModelRef, Transcript
from tests.functions.batch_stack import BatchStack
from tests.functions.learning.loop_models import FakeMonotonic, candidate_dir, publish_stable

V1 = ModelRef(name="edgescribe-edge", version=1)
V2 = ModelRef(name="edgescribe-edge", version=2)
V3 = ModelRef(name="edgescribe-edge", version=3)
TTL = 60.0


@pytest.fixture(scope="module")
def audio(speech_sample: Sample) -> DecodedAudio:
    return decode_audio(speech_sample.path)


@pytest.fixture(scope="module")
def texts(audio: DecodedAudio) -> dict[str, str]:
    """What each model's bytes say about the clip when loaded directly (edge = v1, cloud = v2/v3)."""
    edge = Transcriber.from_model_dir(engine="onnxruntime-cloud")
    cloud = Transcriber.from_model_dir(released_model_dir(CLOUD_MODEL_NAME))
    return {
        "edge": edge.transcribe(audio, transcript_id="x").text,
        "cloud": cloud.transcribe(audio, transcript_id="x").text,
    }


@pytest.fixture
def service(batch_stack: BatchStack, tmp_path: Path) -> DistributionService:
    signer = generate_signing_key(tmp_path / "keys" / "signing.pem")
    return DistributionService(batch_stack.s3, batch_stack.names.models_bucket, signer=signer)


@pytest.fixture
def work_dir(tmp_path: Path) -> Path:
    return tmp_path / "channel-models"


@pytest.fixture
def clock() -> FakeMonotonic:
    return FakeMonotonic()


def _settings(stack: BatchStack, **extra: str) -> InferenceSettings:
    return InferenceSettings.from_environment(
        {
            MODEL_CHANNEL_VARIABLE: "stable",
            "MODELS_BUCKET": stack.names.models_bucket,
            MODEL_CHANNEL_TTL_VARIABLE: str(TTL),
            **extra,
        }
    )


@pytest.fixture
def follower(
    batch_stack: BatchStack, work_dir: Path, clock: FakeMonotonic
) -> Iterator[ChannelFollowingTranscriber]:
    transcriber = channel_following_transcriber(
        _settings(batch_stack), work_dir=work_dir, monotonic=clock
    )
    yield transcriber
    transcriber.close()


def _publish(service: DistributionService, root: Path, version: int) -> None:
    """The cloud model's bytes as ``edgescribe-edge`` v``version``, on the stable channel."""
    service.publish(candidate_dir(root, version))
    service.promote("stable", version, actor="test", name="edgescribe-edge")


def _model_folders(work_dir: Path) -> list[str]:
    """The downloaded version folders (``edgescribe-stable-channel-edgescribe-edge-v2-*`` -> v2)."""
    if not work_dir.exists():
        return []
    return sorted(folder.name.split("-")[-2] for folder in work_dir.iterdir())


def _damage_v2(stack: BatchStack, damage: str) -> bytes:
    """Break v2's model bytes in the bucket; returns the good bytes (to repair it later)."""
    bucket, key = stack.names.models_bucket, storage_layout.model_key("edgescribe-edge", 2)
    good = stack.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    if damage == "flipped-bytes":  # same size, different sha256
        stack.s3.put_object(Bucket=bucket, Key=key, Body=good[:-16] + bytes(16))
    elif damage == "truncated":
        stack.s3.put_object(Bucket=bucket, Key=key, Body=good[: len(good) // 2])
    else:
        stack.s3.delete_object(Bucket=bucket, Key=key)
    return good


# --- without a channel: exactly as before -----------------------------------------------------


def test_without_a_channel_the_baked_in_model_serves_whatever_stable_says(
    batch_stack: BatchStack,
    service: DistributionService,
    audio: DecodedAudio,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    publish_stable(service)
    _publish(service, tmp_path, 2)
    monkeypatch.delenv(MODEL_CHANNEL_VARIABLE, raising=False)

    transcriber = transcriber_from_environment()
    transcript = transcriber.transcribe(audio, transcript_id="plain")

    assert type(transcriber) is Transcriber
    assert transcript.model == V1
    assert InferenceSettings.from_environment({}).model_channel is None


# --- following the channel ----------------------------------------------------------------------


def test_cold_start_before_any_promote_serves_the_baked_in_model(
    follower: ChannelFollowingTranscriber, audio: DecodedAudio, work_dir: Path
) -> None:
    transcript = follower.transcribe(audio, transcript_id="cold")

    assert transcript.model == V1
    assert follower.stats.missing == 1
    assert follower.stats.failures == 0
    assert _model_folders(work_dir) == []


def test_stable_at_the_baked_in_version_downloads_nothing(
    follower: ChannelFollowingTranscriber,
    service: DistributionService,
    audio: DecodedAudio,
    work_dir: Path,
) -> None:
    publish_stable(service)

    assert follower.transcribe(audio, transcript_id="same").model == V1
    assert follower.loaded_models == (V1,)
    assert follower.stats.swaps == 0
    assert _model_folders(work_dir) == []


def test_a_promote_to_stable_reaches_the_function_after_the_ttl(
    follower: ChannelFollowingTranscriber,
    service: DistributionService,
    audio: DecodedAudio,
    texts: dict[str, str],
    clock: FakeMonotonic,
    work_dir: Path,
    tmp_path: Path,
) -> None:
    publish_stable(service)
    first = follower.transcribe(audio, transcript_id="before")
    assert (first.model, first.text) == (V1, texts["edge"])

    _publish(service, tmp_path, 2)
    clock.now += TTL / 2
    assert follower.transcribe(audio, transcript_id="cached").model == V1  # pointer still trusted
    clock.now += TTL / 2
    after = follower.transcribe(audio, transcript_id="after")

    assert after.model == V2
    assert after.text == texts["cloud"]  # really the v2 bytes, not only the label
    assert after.engine == "onnxruntime-cloud"
    assert follower.serving == V2
    assert follower.loaded_models == (V2, V1)
    assert _model_folders(work_dir) == ["v2"]
    assert (follower.stats.looks, follower.stats.swaps, follower.stats.failures) == (2, 1, 0)


@pytest.mark.parametrize("damage", ["flipped-bytes", "truncated", "deleted"])
def test_a_corrupt_promoted_model_keeps_the_loaded_one_serving_and_is_retried_after_the_ttl(
    follower: ChannelFollowingTranscriber,
    batch_stack: BatchStack,
    service: DistributionService,
    audio: DecodedAudio,
    texts: dict[str, str],
    clock: FakeMonotonic,
    work_dir: Path,
    tmp_path: Path,
    damage: str,
) -> None:
    publish_stable(service)
    _publish(service, tmp_path, 2)
    good = _damage_v2(batch_stack, damage)

    transcript = follower.transcribe(audio, transcript_id="during")  # no exception reaches here

    assert (transcript.model, transcript.text) == (V1, texts["edge"])
    assert follower.stats.failures == 1
    assert follower.stats.last_failure is not None
    if damage == "flipped-bytes":
        assert "sha256" in follower.stats.last_failure
    assert follower.loaded_models == (V1,)
    assert _model_folders(work_dir) == []  # the half-downloaded model is cleaned up

    batch_stack.s3.put_object(
        Bucket=batch_stack.names.models_bucket,
        Key=storage_layout.model_key("edgescribe-edge", 2),
        Body=good,
    )  # an operator repairs it
    assert follower.transcribe(audio, transcript_id="same-ttl").model == V1  # no retry yet
    assert follower.stats.looks == 1
    clock.now += TTL
    assert follower.transcribe(audio, transcript_id="repaired").model == V2
    assert follower.stats.failures == 1


def test_a_rollback_of_stable_returns_to_the_previous_model_without_a_download(
    follower: ChannelFollowingTranscriber,
    batch_stack: BatchStack,
    service: DistributionService,
    audio: DecodedAudio,
    texts: dict[str, str],
    clock: FakeMonotonic,
    tmp_path: Path,
) -> None:
    publish_stable(service)
    _publish(service, tmp_path, 2)
    assert follower.transcribe(audio, transcript_id="v2").model == V2

    service.rollback("stable", actor="test", to_version=1, reason="regressed")
    # v1's bytes leave the bucket: the rollback must come from the container, not from S3.
    batch_stack.s3.delete_object(
        Bucket=batch_stack.names.models_bucket, Key=storage_layout.model_key("edgescribe-edge", 1)
    )
    clock.now += TTL
    transcript = follower.transcribe(audio, transcript_id="rolled-back")

    assert (transcript.model, transcript.text) == (V1, texts["edge"])
    assert follower.loaded_models == (V1, V2)
    assert (follower.stats.swaps, follower.stats.failures) == (2, 0)


def test_only_the_current_and_the_previous_model_stay_loaded(
    follower: ChannelFollowingTranscriber,
    batch_stack: BatchStack,
    service: DistributionService,
    audio: DecodedAudio,
    clock: FakeMonotonic,
    work_dir: Path,
    tmp_path: Path,
) -> None:
    publish_stable(service)
    for version in (2, 3):
        _publish(service, tmp_path, version)
        clock.now += TTL
        follower.transcribe(audio, transcript_id=f"v{version}")
    assert follower.loaded_models == (V3, V2)  # the baked-in v1 was let go
    assert _model_folders(work_dir) == ["v2", "v3"]

    service.rollback("stable", actor="test", to_version=1, reason="both regressed")
    batch_stack.s3.delete_object(
        Bucket=batch_stack.names.models_bucket, Key=storage_layout.model_key("edgescribe-edge", 1)
    )
    clock.now += TTL
    transcript = follower.transcribe(audio, transcript_id="back-to-v1")

    assert transcript.model == V1  # reloaded from the image: its bytes are no longer in S3
    assert follower.loaded_models == (V1, V3)
    assert _model_folders(work_dir) == ["v3"]  # v2's files went with it


def test_a_request_in_flight_during_a_swap_finishes_on_the_model_it_started_with(
    batch_stack: BatchStack,
    service: DistributionService,
    audio: DecodedAudio,
    texts: dict[str, str],
    work_dir: Path,
    tmp_path: Path,
) -> None:
    publish_stable(service)
    inside_v1, release_v1 = threading.Event(), threading.Event()

    class PausingBackend(OnnxRuntimeBackend):
        """v1's inference waits for the test: a request that is slow while the channel moves."""

        def infer(self, batch: Sequence[npt.NDArray[np.float32]]) -> list[npt.NDArray[np.float32]]:
            if self.model == V1 and threading.current_thread().name == "slow-request":
                inside_v1.set()
                assert release_v1.wait(timeout=60)
            return super().infer(batch)

    def build(model: AcousticModel) -> Transcriber:
        return Transcriber(PausingBackend(model, engine="onnxruntime-cloud"), model.manifest)

    follower = ChannelFollowingTranscriber(
        AcousticModel.load(released_model_dir()),
        build=build,
        s3=batch_stack.s3,
        models_bucket=batch_stack.names.models_bucket,
        channel="stable",
        ttl_seconds=0.0,
        work_dir=work_dir,
    )
    slow: list[Transcript] = []
    thread = threading.Thread(
        target=lambda: slow.append(follower.transcribe(audio, transcript_id="slow")),
        name="slow-request",
    )
    thread.start()
    try:
        assert inside_v1.wait(timeout=60)
        _publish(service, tmp_path, 2)
        fast = follower.transcribe(audio, transcript_id="fast")
    finally:
        release_v1.set()
        thread.join(timeout=60)
        follower.close()

    assert (fast.model, fast.text) == (V2, texts["cloud"])
    [slow_transcript] = slow
    assert (slow_transcript.model, slow_transcript.text) == (V1, texts["edge"])


def test_a_channel_naming_another_model_is_ignored(
    follower: ChannelFollowingTranscriber,
    service: DistributionService,
    audio: DecodedAudio,
) -> None:
    cloud = service.publish(released_model_dir(CLOUD_MODEL_NAME))
    service.promote("stable", cloud.version, actor="test", name=CLOUD_MODEL_NAME)

    assert follower.transcribe(audio, transcript_id="other").model == V1
    assert (follower.stats.ignored, follower.stats.swaps, follower.stats.failures) == (1, 0, 0)


def test_an_unreadable_channel_file_keeps_the_loaded_model_serving(
    follower: ChannelFollowingTranscriber,
    batch_stack: BatchStack,
    audio: DecodedAudio,
) -> None:
    batch_stack.s3.put_object(
        Bucket=batch_stack.names.models_bucket,
        Key=storage_layout.channel_key("stable"),
        Body=b'{"channel": "stable", "version": "latest"}',
    )

    assert follower.transcribe(audio, transcript_id="garbled").model == V1
    assert follower.stats.failures == 1
    assert "ValidationError" in str(follower.stats.last_failure)


def test_an_unreachable_models_bucket_keeps_the_loaded_model_serving(
    batch_stack: BatchStack, audio: DecodedAudio, work_dir: Path
) -> None:
    follower = channel_following_transcriber(
        _settings(batch_stack, MODELS_BUCKET="no-such-bucket-here"), work_dir=work_dir
    )
    try:
        assert follower.transcribe(audio, transcript_id="no-bucket").model == V1
    finally:
        follower.close()
    assert follower.stats.failures == 1
    assert "NoSuchBucket" in str(follower.stats.last_failure)


# --- through the environment, as the functions get it -------------------------------------------


@pytest.fixture
def closing() -> Iterator[list[Transcriber]]:
    """Transcribers a test got from the environment: their downloaded files are removed after."""
    built: list[Transcriber] = []
    yield built
    for transcriber in built:
        if isinstance(transcriber, ChannelFollowingTranscriber):
            transcriber.close()


def test_environment_with_a_channel_gives_one_following_transcriber_per_container(
    batch_stack: BatchStack,
    service: DistributionService,
    audio: DecodedAudio,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    closing: list[Transcriber],
) -> None:
    publish_stable(service)
    _publish(service, tmp_path, 2)
    monkeypatch.setenv(MODEL_CHANNEL_VARIABLE, "stable")
    monkeypatch.setenv(MODEL_CHANNEL_TTL_VARIABLE, "0")

    transcriber = transcriber_from_environment()
    closing.append(transcriber)

    assert isinstance(transcriber, ChannelFollowingTranscriber)
    assert transcriber_from_environment() is transcriber
    assert transcriber.transcribe(audio, transcript_id="env").model == V2


@pytest.mark.parametrize("mode", ["triton-grpc", "triton-http"])
def test_the_triton_fallback_serves_the_channels_model_while_triton_is_down(
    batch_stack: BatchStack,
    service: DistributionService,
    audio: DecodedAudio,
    texts: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    closing: list[Transcriber],
    mode: str,
) -> None:
    publish_stable(service)
    _publish(service, tmp_path, 2)
    for variable, value in {
        "EDGESCRIBE_INFERENCE": mode,
        "TRITON_URL": f"127.0.0.1:{free_port()}",
        "TRITON_MODEL_VERSION": "1",
        "EDGESCRIBE_TRITON_TIMEOUT_SECONDS": "5",
        MODEL_CHANNEL_VARIABLE: "stable",
        MODEL_CHANNEL_TTL_VARIABLE: "0",
    }.items():
        monkeypatch.setenv(variable, value)

    transcriber = transcriber_from_environment()
    closing.append(transcriber)
    transcript = transcriber.transcribe(audio, transcript_id="fallback")

    engine: Engine = "onnxruntime-cloud"
    assert (transcript.engine, transcript.model, transcript.text) == (engine, V2, texts["cloud"])


@pytest.mark.parametrize(
    ("env", "reason"),
    [
        ({MODEL_CHANNEL_VARIABLE: "beta"}, "EDGESCRIBE_MODEL_CHANNEL='beta'; expected one of"),
        ({MODEL_CHANNEL_TTL_VARIABLE: "soon"}, "'soon' is not a number of seconds"),
        ({MODEL_CHANNEL_TTL_VARIABLE: "-1"}, "must be zero or more seconds"),
        ({MODEL_CHANNEL_TTL_VARIABLE: "nan"}, "must be zero or more seconds"),
    ],
)
def test_a_bad_channel_setting_names_the_variable(env: dict[str, str], reason: str) -> None:
    with pytest.raises(InferenceConfigurationError, match=reason):
        InferenceSettings.from_environment(env)


def test_channel_settings_default_to_a_minute_and_are_read_only_when_a_channel_is_set(
    batch_stack: BatchStack,
) -> None:
    following = _settings(batch_stack, **{MODEL_CHANNEL_TTL_VARIABLE: ""})
    assert following.model_channel == "stable"
    assert following.model_channel_ttl_seconds == 60.0
    assert following.models_bucket == batch_stack.names.models_bucket
    assert (
        InferenceSettings.from_environment({MODEL_CHANNEL_TTL_VARIABLE: "0"}).models_bucket is None
    )
