"""``kill -9`` of the agent at every step of an update: on restart the device has a working model
and the update is either finished or cleanly abandoned.

The agent runs as a real subprocess (``python -m edge.cli sync``). ``EDGESCRIBE_AGENT_FAULT=<step>``
with action ``pause`` freezes it at the step and writes a marker; the test then sends SIGKILL from
outside — the process gets no chance to clean up, exactly like a power cut minus the page cache.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edge.config import AgentConfig
from edge.faults import STEPS
from edge.slots import Slots
from edge.smoke import run_smoke_test
from edge.state import StateStore
from tests.edge.conftest import Releases
from tests.edge.fake_device_api import FakeDeviceApi, Offer

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def agent_environment(config: AgentConfig, **extra: str) -> dict[str, str]:
    env = {
        key: value for key, value in os.environ.items() if not key.startswith("EDGESCRIBE_AGENT_")
    }
    env.update(
        {
            "EDGESCRIBE_AGENT_DEVICE_ID": config.device_id,
            "EDGESCRIBE_AGENT_API_URL": config.api_url,
            "EDGESCRIBE_AGENT_STATE_DIR": str(config.state_dir),
            "EDGESCRIBE_AGENT_TRUSTED_KEYS": ",".join(config.trusted_keys),
            "EDGESCRIBE_AGENT_TOKEN": config.token,
            "EDGESCRIBE_AGENT_READ_TIMEOUT_SECONDS": "5",
            "PYTHONPATH": str(PROJECT_ROOT),
        }
    )
    env.update(extra)
    return env


def run_sync(config: AgentConfig, **extra: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "edge.cli", "sync"],
        env=agent_environment(config, **extra),
        capture_output=True,
        timeout=180,
        check=False,
        cwd=PROJECT_ROOT,
    )


def kill_at(config: AgentConfig, step: str, tmp_path: Path) -> None:
    """Start a sync, wait until it reaches ``step``, then ``kill -9`` it."""
    marker = tmp_path / f"reached-{step}"
    marker.unlink(missing_ok=True)
    process = subprocess.Popen(
        [sys.executable, "-m", "edge.cli", "sync"],
        env=agent_environment(
            config,
            EDGESCRIBE_AGENT_FAULT=step,
            EDGESCRIBE_AGENT_FAULT_ACTION="pause",
            EDGESCRIBE_AGENT_FAULT_MARKER=str(marker),
        ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=PROJECT_ROOT,
    )
    try:
        deadline = time.monotonic() + 180
        while not marker.exists():
            if process.poll() is not None:
                stderr = process.stderr.read().decode() if process.stderr else ""
                pytest.fail(
                    f"agent exited ({process.returncode}) before reaching {step}: {stderr[-2000:]}"
                )
            if time.monotonic() > deadline:
                pytest.fail(f"agent never reached {step}")
            time.sleep(0.05)
        os.kill(process.pid, signal.SIGKILL)
        assert process.wait(timeout=30) == -signal.SIGKILL
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stderr:
            process.stderr.close()


def assert_working_model(config: AgentConfig) -> int:
    """The active slot is intact and transcribes the smoke clip; returns its version."""
    slots = Slots(config.slots_dir)
    active = slots.active()
    assert active is not None
    manifest = slots.validate(active)
    run_smoke_test(slots.path(active))
    assert not list(config.slots_dir.glob("*.staging"))
    assert not list(config.slots_dir.glob("*.tmp"))
    return manifest.version


@pytest.mark.slow
@pytest.mark.parametrize("step", STEPS)
def test_kill_9_at_each_step_then_restart_finishes_update(
    config: AgentConfig, api: FakeDeviceApi, releases: Releases, tmp_path: Path, step: str
) -> None:
    v2 = releases.make(2)
    api.offer(v2.offer())
    kill_at(config, step, tmp_path)
    finished = run_sync(config)
    assert finished.returncode == 0, finished.stderr.decode()[-2000:]
    assert assert_working_model(config) == 2
    state = StateStore(config.state_file).load()
    assert state.pending is None
    assert state.installed is not None
    assert state.installed.version == 2
    assert state.highest_version == 2
    assert not list(config.downloads_dir.glob("*.part"))
    if step == "download-midway":  # the restart resumed instead of starting over
        assert api.blob_requests[-1] is not None
        assert api.blob_requests[-1].startswith("bytes=")


@pytest.mark.slow
@pytest.mark.parametrize("step", STEPS)
def test_kill_9_at_each_step_then_restart_abandons_withdrawn_update(
    config: AgentConfig, api: FakeDeviceApi, releases: Releases, tmp_path: Path, step: str
) -> None:
    api.offer(releases.make(2).offer())
    kill_at(config, step, tmp_path)
    api.offer(Offer(action="none"))  # the release was withdrawn while the device was down
    restarted = run_sync(config)
    assert restarted.returncode == 0, restarted.stderr.decode()[-2000:]
    version = assert_working_model(config)
    state = StateStore(config.state_file).load()
    assert state.pending is None
    assert not list(config.downloads_dir.glob("*.part"))
    switched = STEPS.index(step) >= STEPS.index("switch-done")
    # Before the pointer moved, the update is abandoned; after, it is on trial and is committed
    # by its health check (the device already runs it, and it is healthy).
    assert version == (2 if switched else 1)
    assert state.installed is not None
    assert state.installed.version == version


@pytest.mark.slow
def test_model_that_kills_agent_during_health_check_is_reverted(
    config: AgentConfig, api: FakeDeviceApi, releases: Releases, tmp_path: Path
) -> None:
    """Mender's boot counting: a trial that never finishes its health check twice is reverted."""
    v2 = releases.make(2)
    api.offer(v2.offer())
    kill_at(config, "health-start", tmp_path)
    kill_at(config, "health-start", tmp_path)  # the restart's health check dies too
    restarted = run_sync(config)
    assert restarted.returncode == 0, restarted.stderr.decode()[-2000:]
    assert assert_working_model(config) == 1
    state = StateStore(config.state_file).load()
    assert state.last_outcome is not None
    assert state.last_outcome.result in ("reverted", "rejected")
    assert v2.manifest.sha256 in state.blocked_artifacts
    assert json.loads(restarted.stdout.decode().strip().splitlines()[-1])["action"] == "update"


@pytest.mark.slow
def test_corrupt_active_slot_falls_back_to_the_other(
    config: AgentConfig, api: FakeDeviceApi, releases: Releases
) -> None:
    api.offer(releases.make(2).offer())
    assert run_sync(config).returncode == 0
    model = config.slots_dir / "b" / "model.onnx"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF  # bit rot in the active slot
    model.write_bytes(bytes(data))
    api.offer(Offer(action="none"))
    assert run_sync(config).returncode == 0
    assert Slots(config.slots_dir).active() == "a"
    assert assert_working_model(config) == 1


def test_garbled_pointer_file_is_repaired(config: AgentConfig, api: FakeDeviceApi) -> None:
    (config.slots_dir / "current").write_bytes(b"\xff\xfe garbage")
    api.offer(Offer(action="none"))
    assert run_sync(config).returncode == 0
    assert Slots(config.slots_dir).active() == "a"
