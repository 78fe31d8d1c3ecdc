"""The agent loop: 5xx and timeouts back off (exponential, jittered, capped, reset by success);
heartbeats carry what the fleet needs. Time is a fake clock: nothing here sleeps for real."""

from __future__ import annotations

import random
import socket
from collections.abc import Iterator
from dataclasses import replace

import pytest

from edge.agent import Agent
from edge.backoff import Backoff
from edge.clock import FakeClock
from edge.config import AgentConfig
from tests.edge.conftest import Releases
from tests.edge.fake_device_api import FakeDeviceApi, Offer


class HighestDraw(random.Random):
    """Full jitter draws uniformly in [0, ceiling]; this one always draws the ceiling."""

    def uniform(self, a: float, b: float) -> float:
        return b


def test_backoff_doubles_up_to_cap_and_resets() -> None:
    backoff = Backoff(base_seconds=1.0, cap_seconds=20.0, rng=HighestDraw())
    assert [backoff.next_delay() for _ in range(7)] == [1, 2, 4, 8, 16, 20, 20]
    backoff.reset()
    assert backoff.next_delay() == 1


def test_backoff_is_jittered_so_devices_spread_out() -> None:
    delays = {Backoff(base_seconds=10, rng=random.Random(seed)).next_delay() for seed in range(50)}
    assert len(delays) == 50
    assert all(0 <= delay <= 10 for delay in delays)


def test_server_errors_back_off_then_success_returns_to_poll_interval(
    agent: Agent, api: FakeDeviceApi, clock: FakeClock
) -> None:
    agent.rng = HighestDraw()
    agent.backoff.rng = agent.rng
    api.fail("heartbeat", 503, 500, 502, 503)
    agent.run(max_cycles=6)
    # the 5th cycle succeeded: the poll interval (60 s) plus its +10 % jitter at the top draw
    assert clock.sleeps == [1, 2, 4, 8, 66]
    assert len(api.heartbeats) == 2
    assert api.heartbeats[0]["last_error"].startswith("ServerUnavailableError")
    assert api.heartbeats[1]["last_error"] is None  # reported once, then cleared


def test_model_route_5xx_backs_off_too(agent: Agent, api: FakeDeviceApi, clock: FakeClock) -> None:
    agent.backoff.rng = HighestDraw()
    api.fail("model", 503, 503)
    agent.run(max_cycles=3)
    assert clock.sleeps[:2] == [1, 2]


@pytest.fixture
def silent_server() -> Iterator[int]:
    """Accepts TCP connections and never answers (a hung load balancer)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield listener.getsockname()[1]


def test_timeouts_back_off(config: AgentConfig, clock: FakeClock, silent_server: int) -> None:
    agent = Agent(
        replace(config, api_url=f"http://127.0.0.1:{silent_server}", read_timeout_seconds=0.2),
        clock=clock,
    )
    agent.backoff.rng = HighestDraw()
    agent.run(max_cycles=3)
    assert clock.sleeps == [1, 2]
    assert "timed out" in (agent.updater.store.load().last_error or "")


def test_rejected_update_backs_off_instead_of_polling_at_full_rate(
    agent: Agent, api: FakeDeviceApi, releases: Releases, clock: FakeClock
) -> None:
    from tests.edge.fake_device_api import BlobFault

    agent.backoff.rng = HighestDraw()
    api.offer(releases.make(2).offer())
    api.blob_fault = BlobFault.TAMPER
    agent.run(max_cycles=3)
    assert clock.sleeps == [1, 2]


def test_unauthorized_device_backs_off(agent: Agent, api: FakeDeviceApi, clock: FakeClock) -> None:
    agent.backoff.rng = HighestDraw()
    api.token = "rotated-elsewhere"
    agent.run(max_cycles=2)
    assert clock.sleeps == [1]
    assert "401" in (agent.updater.store.load().last_error or "")


def test_heartbeat_reports_version_health_and_queue_depth(agent: Agent, api: FakeDeviceApi) -> None:
    agent.outbox.enqueue("correction", "correction:1", {"transcript_id": "x"})
    api.fail("feedback", 503)  # the correction stays queued this cycle
    api.offer(Offer(action="none"))
    agent.sync_once()
    assert api.heartbeats[-1] == {
        "version": 1,
        "health": "ok",
        "queue_depth": 1,
        "last_error": None,
        "agent_version": "0.1.0",
    }
    assert api.model_queries == ["1"]
