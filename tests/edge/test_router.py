"""Inference routing: cloud when healthy, the local model (and the outbox) otherwise, never a
request lost to a dead or slow cloud, and bad audio named as such whichever engine would run."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile

from edge.client import DeviceClient
from edge.clock import FakeClock
from edge.config import SMOKE_CLIP, AgentConfig
from edge.local_engine import CPU_PROVIDER, choose_providers, load_local_transcriber
from edge.outbox import Outbox
from edge.router import InferenceRouter, LocalModel, correction_payload
from edge.slots import Slots
from models.runtime.audio import AudioDecodeError
from models.runtime.fallback import CircuitBreaker, CircuitState
from models.runtime.transcriber import Transcriber
from tests.edge.fake_device_api import FakeDeviceApi

CLIP = SMOKE_CLIP.read_bytes()


@pytest.fixture
def cloud_engine(config: AgentConfig) -> Transcriber:
    """What the fake API runs for ``POST /v1/transcriptions``: a real transcriber, cloud-labelled."""
    return Transcriber.from_model_dir(config.slots_dir / "a", engine="onnxruntime-cloud")


@pytest.fixture
def router(
    config: AgentConfig, api: FakeDeviceApi, cloud_engine: Transcriber, clock: FakeClock
) -> Iterator[InferenceRouter]:
    from models.runtime.audio import decode_audio

    def cloud(body: bytes, transcript_id: str) -> dict[str, Any]:
        transcript = cloud_engine.transcribe(decode_audio(body), transcript_id="cloud-1")
        return transcript.model_dump(mode="json")

    api.cloud_transcribe = cloud
    built = InferenceRouter(
        device_id=config.device_id,
        local=LocalModel(Slots(config.slots_dir)),
        outbox=Outbox(config.outbox_file),
        client=DeviceClient(api.base_url, config.device_id, lambda: api.token, timeout_seconds=2),
        breaker=CircuitBreaker(failure_threshold=2, reset_timeout=60, clock=clock.monotonic),
        cloud_timeout_seconds=1.0,
    )
    yield built
    built.close()


def test_uses_cloud_when_online_and_healthy(router: InferenceRouter, api: FakeDeviceApi) -> None:
    routed = router.transcribe(CLIP, filename="clip.wav")
    assert routed.transcript.engine == "onnxruntime-cloud"
    assert not routed.queued  # already in the cloud
    assert router.outbox.depth() == 0
    assert api.cloud_requests == 1


def test_offline_transcribes_locally_and_queues_result(
    router: InferenceRouter, api: FakeDeviceApi
) -> None:
    routed = router.transcribe(CLIP, filename="clip.wav", transcript_id="t-1", offline=True)
    assert routed.transcript.engine == "onnxruntime-edge"
    assert routed.transcript.id == "t-1"
    assert routed.transcript.text  # the local model heard something
    assert routed.queued
    assert router.outbox.keys() == ["transcript:dev-0001:t-1"]
    assert api.cloud_requests == 0


def test_cloud_outage_falls_back_locally_then_breaker_stops_calling_it(
    router: InferenceRouter, api: FakeDeviceApi, clock: FakeClock
) -> None:
    api.fail("transcriptions", 503, 503)
    for _ in range(2):
        routed = router.transcribe(CLIP, filename="clip.wav")
        assert routed.transcript.engine == "onnxruntime-edge"
        assert routed.queued
    assert router.breaker.state is CircuitState.OPEN
    router.transcribe(CLIP, filename="clip.wav")
    assert api.cloud_requests == 2  # the open breaker spared the dead cloud a third call
    clock.advance(61)  # reset timeout: one probe goes through, succeeds, closes the breaker
    assert router.transcribe(CLIP, filename="clip.wav").transcript.engine == "onnxruntime-cloud"
    assert router.breaker.state.value == "closed"
    assert router.outbox.depth() == 3


def test_slow_cloud_hits_deadline_and_falls_back(
    router: InferenceRouter, api: FakeDeviceApi
) -> None:
    api.cloud_delay_seconds = 5.0  # the router's deadline is 1 s
    routed = router.transcribe(CLIP, filename="clip.wav")
    assert routed.transcript.engine == "onnxruntime-edge"
    assert routed.cloud_error is not None
    assert "did not answer" in routed.cloud_error or "timed out" in routed.cloud_error
    assert router.breaker.consecutive_failures == 1


def test_unreachable_cloud_falls_back(config: AgentConfig, tmp_path: Path) -> None:
    from edgescribe.local.ports import free_port

    router = InferenceRouter(
        device_id=config.device_id,
        local=LocalModel(Slots(config.slots_dir)),
        outbox=Outbox(config.outbox_file),
        client=DeviceClient(f"http://127.0.0.1:{free_port()}", config.device_id, lambda: "t"),
        breaker=CircuitBreaker(),
    )
    try:
        routed = router.transcribe(CLIP, filename="clip.wav")
    finally:
        router.close()
    assert routed.transcript.engine == "onnxruntime-edge"
    assert routed.queued


def test_cloud_refusing_the_input_does_not_trip_breaker(
    router: InferenceRouter, api: FakeDeviceApi
) -> None:
    api.fail("transcriptions", 415)
    routed = router.transcribe(CLIP, filename="clip.wav")
    assert routed.transcript.engine == "onnxruntime-edge"
    assert router.breaker.consecutive_failures == 0


def test_clip_over_sync_limit_goes_local_without_calling_cloud(
    router: InferenceRouter, api: FakeDeviceApi
) -> None:
    buffer = io.BytesIO()
    soundfile.write(buffer, np.zeros(16_000 * 31, dtype=np.float32), 16_000, format="WAV")
    routed = router.transcribe(buffer.getvalue(), filename="long.wav")
    assert routed.transcript.engine == "onnxruntime-edge"
    assert api.cloud_requests == 0
    assert routed.cloud_error is not None
    assert "synchronous limit" in routed.cloud_error


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b"hello, this is not audio at all\n" * 4, "text"),
        (CLIP[: len(CLIP) // 3], "truncated"),
    ],
)
def test_bad_audio_gets_specific_error_and_nothing_is_queued(
    router: InferenceRouter, api: FakeDeviceApi, data: bytes, reason: str
) -> None:
    with pytest.raises(AudioDecodeError) as caught:
        router.transcribe(data, filename="bad.wav")
    assert "bad.wav" in str(caught.value)
    assert router.outbox.depth() == 0
    assert api.cloud_requests == 0


def test_hostile_transcript_id_is_refused(router: InferenceRouter) -> None:
    from models.runtime.storage_layout import InvalidKeyError

    with pytest.raises(InvalidKeyError):
        router.transcribe(
            CLIP, filename="clip.wav", transcript_id="../../models/stable", offline=True
        )


def test_local_model_reloads_after_active_slot_changes(config: AgentConfig) -> None:
    loads: list[Path] = []

    def loader(model_dir: Path) -> Transcriber:
        loads.append(model_dir)
        return load_local_transcriber(model_dir)

    slots = Slots(config.slots_dir)
    local = LocalModel(slots, loader=loader)
    local.get()
    local.get()
    assert loads == [config.slots_dir / "a"]  # loaded once, not per request
    manifest = slots.validate("a")
    slots.stage("b", config.slots_dir / "a" / "model.onnx", manifest)
    slots.switch("b")
    local.get()
    assert loads[-1] == config.slots_dir / "b"


def test_execution_providers_in_preference_order() -> None:
    available = [
        "CPUExecutionProvider",
        "NnapiExecutionProvider",
        "OpenVINOExecutionProvider",
        "QNNExecutionProvider",
        "CoreMLExecutionProvider",
    ]
    assert choose_providers(available) == [
        "QNNExecutionProvider",
        "OpenVINOExecutionProvider",
        "CoreMLExecutionProvider",
        "NnapiExecutionProvider",
        CPU_PROVIDER,
    ]
    assert choose_providers(["CPUExecutionProvider", "AzureExecutionProvider"]) == [CPU_PROVIDER]


def test_local_session_runs_on_cpu_here(config: AgentConfig) -> None:
    transcriber = load_local_transcriber(config.slots_dir / "a")
    assert transcriber.backend.engine == "onnxruntime-edge"
    assert transcriber.backend.acoustic_model.providers == [CPU_PROVIDER]  # type: ignore[attr-defined]


def test_correction_of_local_transcript_carries_original_text_and_model(
    router: InferenceRouter,
) -> None:
    routed = router.transcribe(CLIP, filename="clip.wav", transcript_id="t-9", offline=True)
    key, payload = correction_payload(router.outbox, "t-9", "the device is checking")
    assert key == f"correction:{payload['feedback_id']}"
    assert payload["original_text"] == routed.transcript.text
    assert payload["model"] == routed.transcript.model.model_dump()
    assert payload["corrected_at"].endswith("+00:00")
