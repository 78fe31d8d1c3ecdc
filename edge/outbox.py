"""The durable outbox: every offline result and every correction reaches the cloud exactly once.

SQLite in WAL mode with ``synchronous=FULL``: a committed ``enqueue`` survives ``kill -9`` and power
loss. Delivery protocol:

* Each item carries an **idempotency key** chosen when it is created (``transcript:<device>:<id>``,
  ``correction:<device>:<uuid>``) and sent as the ``Idempotency-Key`` header. Enqueueing the same
  key twice stores it once.
* ``flush`` sends items oldest first and **deletes an item only after a 2xx** (or a 409, which the
  server uses for "already have this key"). A crash between the server's 2xx and the delete
  re-sends the item on restart; the server's de-duplication by key makes that harmless, so the
  cloud sees each item exactly once.
* A transient failure (no link, timeout, 5xx) stops the flush; the item stays queued. A "not now"
  answer (401/403 while a token is renewed; 404 for a transcript route the server lacks) pauses
  that kind of item. A request the server rejects for good (other 4xx: the item itself is bad)
  moves to ``dead_letters`` — kept on disk for a human, counted, never blocking the queue.

**Bounded size, and the policy when full** (``max_items`` and ``max_bytes``): corrections are
never dropped — they are a person's work and the learning loop's input. To make room, the
*oldest transcripts* are dropped first and counted in ``dropped_transcripts`` (reported in every
heartbeat). If only corrections fill the outbox, a new transcript is dropped (counted) and a new
correction is refused with ``OutboxFullError`` so the app can tell the user instead of losing it.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from edge.errors import OutboxFullError, RequestRejectedError, TransientError
from models.runtime.transcript import Transcript

Kind = Literal["transcript", "correction"]
Sender = Callable[[Kind, dict[str, Any], str], None]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    key        TEXT NOT NULL UNIQUE,
    kind       TEXT NOT NULL CHECK (kind IN ('transcript', 'correction')),
    payload    TEXT NOT NULL,
    bytes      INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    last_error TEXT
);
CREATE TABLE IF NOT EXISTS dead_letters (
    key     TEXT PRIMARY KEY,
    kind    TEXT NOT NULL,
    payload TEXT NOT NULL,
    status  INTEGER NOT NULL,
    reason  TEXT NOT NULL,
    at      TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS recent_transcripts (
    transcript_id TEXT PRIMARY KEY,
    text          TEXT NOT NULL,
    model         TEXT NOT NULL,
    seq           INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
"""

#: 4xx answers that mean "not now" rather than "never": retry later, do not dead-letter. An
#: expired or rotating token (401/403) is fixed by the operator; for transcripts a 404 means the
#: server does not have the upload route yet. For corrections a 404 is final ("no such
#: transcript"): they go to the dead letters.
_RETRY_LATER_STATUSES: dict[str, frozenset[int]] = {
    "transcript": frozenset({401, 403, 404}),
    "correction": frozenset({401, 403}),
}
#: Local transcripts remembered for corrections (original text and model).
MAX_RECENT_TRANSCRIPTS = 1_000


@dataclass(frozen=True)
class FlushResult:
    sent: int
    dead_lettered: int
    remaining: int
    stopped_by: str | None = None  # the transient error that ended the flush early


@dataclass(frozen=True)
class OutboxStats:
    depth: int
    corrections: int
    transcripts: int
    bytes: int
    dead_letters: int
    dropped_transcripts: int
    refused_corrections: int


class Outbox:
    """A bounded, durable FIFO of items to upload (one SQLite file; safe across processes)."""

    def __init__(
        self, path: Path, *, max_items: int = 10_000, max_bytes: int = 64 * 1024 * 1024
    ) -> None:
        self.path = path
        self.max_items = max_items
        self.max_bytes = max_bytes
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        try:
            db.execute("PRAGMA synchronous=FULL")
            yield db
        finally:
            db.close()

    # -- writing ----------------------------------------------------------------------------------
    def enqueue(self, kind: Kind, key: str, payload: dict[str, Any]) -> bool:
        """Queue one item durably. False if the key was already queued (or a transcript was
        dropped because only corrections fill the outbox). Raises ``OutboxFullError`` for a
        correction that cannot fit."""
        body = json.dumps(payload, separators=(",", ":"), default=str)
        size = len(body.encode())
        if size > self.max_bytes:
            raise OutboxFullError(f"{kind} {key} is {size} bytes, larger than the whole outbox")
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                if db.execute("SELECT 1 FROM items WHERE key = ?", (key,)).fetchone():
                    db.execute("COMMIT")
                    return False
                if not self._make_room(db, size):
                    if kind == "correction":
                        self._bump(db, "refused_corrections")
                        db.execute("COMMIT")
                        raise OutboxFullError(
                            f"outbox full of corrections ({self.max_items} items / "
                            f"{self.max_bytes} bytes): correction {key} not queued"
                        )
                    self._bump(db, "dropped_transcripts")
                    db.execute("COMMIT")
                    return False
                db.execute(
                    "INSERT INTO items (key, kind, payload, bytes, created_at) VALUES (?, ?, ?, ?, ?)",
                    (key, kind, body, size, datetime.now(UTC).isoformat()),
                )
                db.execute("COMMIT")
                return True
            except sqlite3.Error:
                db.execute("ROLLBACK")
                raise

    def _make_room(self, db: sqlite3.Connection, size: int) -> bool:
        """Drop oldest transcripts until one more item of ``size`` fits. False if it cannot."""
        while True:
            count, total = db.execute(
                "SELECT COUNT(*), COALESCE(SUM(bytes), 0) FROM items"
            ).fetchone()
            if count + 1 <= self.max_items and total + size <= self.max_bytes:
                return True
            oldest = db.execute(
                "SELECT seq FROM items WHERE kind = 'transcript' ORDER BY seq LIMIT 1"
            ).fetchone()
            if oldest is None:
                return False
            db.execute("DELETE FROM items WHERE seq = ?", oldest)
            self._bump(db, "dropped_transcripts")

    @staticmethod
    def _bump(db: sqlite3.Connection, name: str) -> None:
        db.execute(
            "INSERT INTO counters (name, value) VALUES (?, 1) "
            "ON CONFLICT(name) DO UPDATE SET value = value + 1",
            (name,),
        )

    # -- delivering -------------------------------------------------------------------------------
    def flush(self, send: Sender, *, limit: int = 1_000) -> FlushResult:
        """Send queued items oldest first; delete each only after the server acknowledged it.

        A link failure stops the whole flush. A "retry later" answer stops only that item's kind,
        so a transcript route the server lacks never holds back the corrections."""
        sent = dead = 0
        stopped_by: str | None = None
        paused: set[str] = set()
        with self._connect() as db:
            rows = db.execute(
                "SELECT seq, key, kind, payload FROM items ORDER BY seq LIMIT ?", (limit,)
            ).fetchall()
        for seq, key, kind, payload in rows:
            if kind in paused:
                continue
            try:
                send(kind, json.loads(payload), key)
            except RequestRejectedError as exc:
                if exc.status == 409:  # the server already holds this key: delivered
                    self._delete(seq)
                    sent += 1
                    continue
                if exc.status in _RETRY_LATER_STATUSES[kind]:
                    self._note_failure(seq, str(exc))
                    stopped_by = str(exc)
                    paused.add(kind)
                    continue
                self._dead_letter(seq, key, kind, payload, exc.status, str(exc))
                dead += 1
                continue
            except TransientError as exc:
                self._note_failure(seq, str(exc))
                stopped_by = str(exc)
                break
            self._delete(seq)
            sent += 1
        return FlushResult(
            sent=sent, dead_lettered=dead, remaining=self.depth(), stopped_by=stopped_by
        )

    # -- remembering local transcripts -------------------------------------------------------------
    def remember_transcript(self, transcript: Transcript) -> None:
        """Keep a local transcript's text and model so a later correction can carry them."""
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            db.execute(
                "INSERT OR REPLACE INTO recent_transcripts (transcript_id, text, model, seq) "
                "VALUES (?, ?, ?, COALESCE((SELECT MAX(seq) FROM recent_transcripts), 0) + 1)",
                (transcript.id, transcript.text, transcript.model.model_dump_json()),
            )
            db.execute(
                "DELETE FROM recent_transcripts WHERE seq <= "
                "(SELECT MAX(seq) FROM recent_transcripts) - ?",
                (MAX_RECENT_TRANSCRIPTS,),
            )
            db.execute("COMMIT")

    def recall_transcript(self, transcript_id: str) -> dict[str, Any] | None:
        with self._connect() as db:
            row = db.execute(
                "SELECT text, model FROM recent_transcripts WHERE transcript_id = ?",
                (transcript_id,),
            ).fetchone()
        if row is None:
            return None
        return {"text": row[0], "model": json.loads(row[1])}

    def _delete(self, seq: int) -> None:
        with self._connect() as db:
            db.execute("DELETE FROM items WHERE seq = ?", (seq,))

    def _note_failure(self, seq: int, reason: str) -> None:
        with self._connect() as db:
            db.execute(
                "UPDATE items SET attempts = attempts + 1, last_error = ? WHERE seq = ?",
                (reason[:500], seq),
            )

    def _dead_letter(
        self, seq: int, key: str, kind: str, payload: str, status: int, reason: str
    ) -> None:
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            db.execute(
                "INSERT OR REPLACE INTO dead_letters (key, kind, payload, status, reason, at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (key, kind, payload, status, reason[:500], datetime.now(UTC).isoformat()),
            )
            db.execute("DELETE FROM items WHERE seq = ?", (seq,))
            db.execute("COMMIT")

    # -- reading ----------------------------------------------------------------------------------
    def depth(self) -> int:
        with self._connect() as db:
            return int(db.execute("SELECT COUNT(*) FROM items").fetchone()[0])

    def keys(self) -> list[str]:
        with self._connect() as db:
            return [row[0] for row in db.execute("SELECT key FROM items ORDER BY seq")]

    def stats(self) -> OutboxStats:
        with self._connect() as db:
            kinds = dict(db.execute("SELECT kind, COUNT(*) FROM items GROUP BY kind").fetchall())
            total = db.execute("SELECT COALESCE(SUM(bytes), 0) FROM items").fetchone()[0]
            dead = db.execute("SELECT COUNT(*) FROM dead_letters").fetchone()[0]
            counters = dict(db.execute("SELECT name, value FROM counters").fetchall())
        return OutboxStats(
            depth=int(sum(kinds.values())),
            corrections=int(kinds.get("correction", 0)),
            transcripts=int(kinds.get("transcript", 0)),
            bytes=int(total),
            dead_letters=int(dead),
            dropped_transcripts=int(counters.get("dropped_transcripts", 0)),
            refused_corrections=int(counters.get("refused_corrections", 0)),
        )
