"""The outbox loses nothing it promised to keep, uploads each item once, and stays bounded."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from edge.client import DeviceClient
from edge.errors import LinkError, OutboxFullError, RequestRejectedError, ServerUnavailableError
from edge.outbox import Kind, Outbox
from tests.edge.fake_device_api import FakeDeviceApi


class RecordingSender:
    """Calls the real client and records what it sent."""

    def __init__(self, client: DeviceClient) -> None:
        self.client = client
        self.sent: list[str] = []

    def __call__(self, kind: Kind, payload: dict[str, Any], key: str) -> None:
        if kind == "correction":
            self.client.post_feedback(payload, key)
        else:
            self.client.post_edge_transcript(payload, key)
        self.sent.append(key)


@pytest.fixture
def client(api: FakeDeviceApi) -> DeviceClient:
    return DeviceClient(api.base_url, "dev-0001", lambda: api.token, timeout_seconds=2)


def test_uses_sqlite_wal_journal(tmp_path: Path) -> None:
    Outbox(tmp_path / "outbox.sqlite")
    with sqlite3.connect(tmp_path / "outbox.sqlite") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_same_idempotency_key_is_queued_once(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o.sqlite")
    assert outbox.enqueue("transcript", "transcript:d:1", {"n": 1})
    assert not outbox.enqueue("transcript", "transcript:d:1", {"n": 1})
    assert outbox.depth() == 1


def test_queued_items_survive_kill_9_of_the_writer(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite"
    script = (
        "import os, signal, sys\n"
        "from pathlib import Path\n"
        "from edge.outbox import Outbox\n"
        "box = Outbox(Path(sys.argv[1]))\n"
        "for i in range(20):\n"
        "    box.enqueue('correction', f'correction:{i}', {'i': i})\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    finished = subprocess.run(
        [sys.executable, "-c", script, str(path)], check=False, cwd=Path(__file__).parents[2]
    )
    assert finished.returncode == -9
    assert Outbox(path).keys() == [f"correction:{i}" for i in range(20)]


def test_flush_delivers_each_item_exactly_once_in_order(
    tmp_path: Path, api: FakeDeviceApi, client: DeviceClient
) -> None:
    outbox = Outbox(tmp_path / "o.sqlite")
    for i in range(5):
        outbox.enqueue("transcript", f"transcript:d:{i}", {"i": i})
        outbox.enqueue("correction", f"correction:{i}", {"i": i})
    sender = RecordingSender(client)
    result = outbox.flush(sender)
    assert result.sent == 10
    assert result.remaining == 0
    assert sender.sent[:2] == ["transcript:d:0", "correction:0"]
    assert set(api.deliveries.values()) == {1}
    assert len(api.stored) == 10
    assert outbox.flush(sender).sent == 0  # nothing is sent twice


def test_item_is_deleted_only_after_2xx(
    tmp_path: Path, api: FakeDeviceApi, client: DeviceClient
) -> None:
    outbox = Outbox(tmp_path / "o.sqlite")
    outbox.enqueue("correction", "correction:a", {"i": 1})
    outbox.enqueue("correction", "correction:b", {"i": 2})
    api.fail("feedback", 503)
    result = outbox.flush(RecordingSender(client))
    assert result.sent == 0
    assert result.stopped_by is not None
    assert outbox.keys() == ["correction:a", "correction:b"]  # order kept, nothing lost
    assert outbox.flush(RecordingSender(client)).sent == 2


def test_crash_after_server_ack_before_delete_is_deduplicated_by_key(
    tmp_path: Path, api: FakeDeviceApi, client: DeviceClient
) -> None:
    """The exactly-once argument: a re-send after a lost ack is absorbed by the server's key."""
    outbox = Outbox(tmp_path / "o.sqlite")
    outbox.enqueue("transcript", "transcript:d:7", {"i": 7})

    def send_then_crash(kind: Kind, payload: dict[str, Any], key: str) -> None:
        client.post_edge_transcript(payload, key)  # the server stored it …
        raise LinkError("connection reset before the agent saw the 201")  # … the ack was lost

    outbox.flush(send_then_crash)
    assert outbox.keys() == ["transcript:d:7"]
    outbox.flush(RecordingSender(client))
    assert outbox.depth() == 0
    assert api.deliveries["transcript:d:7"] == 2  # sent twice …
    assert len(api.stored) == 1  # … stored once


def test_conflict_409_counts_as_delivered(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o.sqlite")
    outbox.enqueue("correction", "correction:x", {})

    def already_there(kind: Kind, payload: dict[str, Any], key: str) -> None:
        raise RequestRejectedError(409, "feedback already stored")

    assert outbox.flush(already_there).sent == 1
    assert outbox.depth() == 0


def test_permanently_rejected_item_moves_to_dead_letters_without_blocking(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o.sqlite")
    outbox.enqueue("correction", "correction:bad", {"bad": True})
    outbox.enqueue("correction", "correction:good", {"bad": False})
    delivered: list[str] = []

    def server(kind: Kind, payload: dict[str, Any], key: str) -> None:
        if payload["bad"]:
            raise RequestRejectedError(422, "corrected_text: too long")
        delivered.append(key)

    result = outbox.flush(server)
    assert result.dead_lettered == 1
    assert delivered == ["correction:good"]
    stats = outbox.stats()
    assert stats.dead_letters == 1
    assert stats.depth == 0


def test_missing_transcript_route_does_not_hold_back_corrections(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o.sqlite")
    outbox.enqueue("transcript", "transcript:d:1", {})
    outbox.enqueue("correction", "correction:1", {})
    delivered: list[str] = []

    def server(kind: Kind, payload: dict[str, Any], key: str) -> None:
        if kind == "transcript":
            raise RequestRejectedError(404, "no such route")
        delivered.append(key)

    outbox.flush(server)
    assert delivered == ["correction:1"]
    assert outbox.keys() == ["transcript:d:1"]  # kept for when the route exists


def test_link_failure_stops_the_flush(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o.sqlite")
    for i in range(3):
        outbox.enqueue("correction", f"correction:{i}", {})
    calls: list[str] = []

    def down(kind: Kind, payload: dict[str, Any], key: str) -> None:
        calls.append(key)
        raise ServerUnavailableError(503)

    outbox.flush(down)
    assert calls == ["correction:0"]  # no hammering a dead server with the rest


def test_full_outbox_drops_oldest_transcripts_never_corrections(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o.sqlite", max_items=4)
    outbox.enqueue("transcript", "t0", {})
    outbox.enqueue("correction", "c0", {})
    outbox.enqueue("transcript", "t1", {})
    outbox.enqueue("correction", "c1", {})
    assert outbox.enqueue("transcript", "t2", {})  # evicts t0
    assert outbox.keys() == ["c0", "t1", "c1", "t2"]
    assert outbox.enqueue("correction", "c2", {})  # evicts t1
    assert outbox.enqueue("correction", "c3", {})  # evicts t2
    assert outbox.keys() == ["c0", "c1", "c2", "c3"]
    assert not outbox.enqueue(
        "transcript", "t3", {}
    )  # only corrections left: the new one is dropped
    with pytest.raises(OutboxFullError, match="full of corrections"):
        outbox.enqueue("correction", "c4", {})
    stats = outbox.stats()
    assert stats.dropped_transcripts == 4
    assert stats.refused_corrections == 1
    assert stats.corrections == 4


def test_byte_budget_is_enforced(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o.sqlite", max_bytes=300)
    outbox.enqueue("transcript", "t0", {"text": "x" * 100})
    outbox.enqueue("transcript", "t1", {"text": "x" * 100})
    outbox.enqueue("transcript", "t2", {"text": "x" * 100})  # evicts t0
    assert outbox.keys() == ["t1", "t2"]
    with pytest.raises(OutboxFullError, match="larger than the whole outbox"):
        outbox.enqueue("correction", "huge", {"text": "x" * 400})
