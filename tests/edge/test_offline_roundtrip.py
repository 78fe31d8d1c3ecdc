"""Offline, the device keeps transcribing locally; back online, every queued result and correction
reaches the cloud exactly once — across agent restarts, through real agent cycles and the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from edge.agent import Agent
from edge.clock import FakeClock
from edge.config import SMOKE_CLIP, AgentConfig
from edge.router import InferenceRouter, LocalModel, correction_payload
from edge.slots import Slots
from models.runtime.fallback import CircuitBreaker
from tests.edge.fake_device_api import FakeDeviceApi, Offer
from tests.edge.test_crash_recovery import PROJECT_ROOT, agent_environment


def make_router(agent: Agent) -> InferenceRouter:
    return InferenceRouter(
        device_id=agent.config.device_id,
        local=LocalModel(Slots(agent.config.slots_dir)),
        outbox=agent.outbox,
        client=agent.client,
        breaker=CircuitBreaker(failure_threshold=1, reset_timeout=3600),
        cloud_timeout_seconds=2.0,
    )


def test_offline_work_is_uploaded_exactly_once_after_restart(
    config: AgentConfig, api: FakeDeviceApi, clock: FakeClock
) -> None:
    api.offline = True
    api.offer(Offer(action="none"))
    agent = Agent(config, clock=clock)
    router = make_router(agent)
    try:
        produced = [
            router.transcribe(SMOKE_CLIP.read_bytes(), filename="clip.wav", transcript_id=f"t{i}")
            for i in range(3)
        ]
    finally:
        router.close()
    assert {routed.transcript.engine for routed in produced} == {"onnxruntime-edge"}
    for i in range(2):
        key, payload = correction_payload(agent.outbox, f"t{i}", f"corrected {i}")
        agent.outbox.enqueue("correction", key, payload)
    assert agent.run_cycle() > 0  # offline: the cycle fails and backs off; nothing is lost
    assert agent.outbox.depth() == 5

    restarted = Agent(config, clock=clock)  # the device rebooted while offline
    assert restarted.outbox.depth() == 5
    api.offline = False
    restarted.run(max_cycles=1)
    assert len(api.stored) == 5
    assert set(api.deliveries.values()) == {1}
    transcripts = api.stored_of_kind("transcripts")
    assert sorted(body["transcript"]["id"] for body in transcripts) == ["t0", "t1", "t2"]
    corrections = api.stored_of_kind("feedback")
    assert sorted(body["corrected_text"] for body in corrections) == ["corrected 0", "corrected 1"]
    assert all("original_text" in body for body in corrections)
    assert api.heartbeats[-1]["queue_depth"] == 5  # heartbeat before the flush
    restarted.run(max_cycles=1)
    assert set(api.deliveries.values()) == {1}  # the next cycle re-sends nothing
    assert api.heartbeats[-1]["queue_depth"] == 0


def run_cli(config: AgentConfig, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edge.cli", *args],
        env=agent_environment(config),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=PROJECT_ROOT,
    )


def test_cli_offline_transcribe_correct_then_sync_uploads_once(
    config: AgentConfig, api: FakeDeviceApi, tmp_path: Path
) -> None:
    api.offline = True
    api.offer(Offer(action="none"))
    transcribed = run_cli(config, "transcribe", str(SMOKE_CLIP), "--id", "cli-1")
    assert transcribed.returncode == 0, transcribed.stderr
    transcript = json.loads(transcribed.stdout)
    assert transcript["engine"] == "onnxruntime-edge"
    assert "queued for upload" in transcribed.stderr
    corrected = run_cli(config, "correct", "cli-1", "the device is checking its new speech model")
    assert corrected.returncode == 0, corrected.stderr
    offline_sync = run_cli(config, "sync")
    assert offline_sync.returncode == 3  # link down: a transient failure, say so
    status = json.loads(run_cli(config, "status").stdout)
    assert status["outbox"]["depth"] == 2
    api.offline = False
    online_sync = run_cli(config, "sync")
    assert online_sync.returncode == 0, online_sync.stderr
    assert json.loads(online_sync.stdout)["outbox_sent"] == 2
    assert sorted(api.deliveries) == sorted(
        [f"transcript:{config.device_id}:cli-1", json.loads(corrected.stdout)["queued"]]
    )
    assert set(api.deliveries.values()) == {1}
    feedback = api.stored_of_kind("feedback")[0]
    assert feedback["original_text"] == transcript["text"]
    assert os.environ.get("EDGESCRIBE_AGENT_FAULT") is None
