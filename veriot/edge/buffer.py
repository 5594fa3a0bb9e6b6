"""The edge agent's durable buffer: signed readings waiting for veriot's verdict.

SQLite in the buffer directory (`edge.db`). A reading is signed and stored with its
device's next sequence number in one transaction, so a number is never used twice, even
across crashes; it stays until veriot's ack for it arrives (end to end: a broker PUBACK is
not enough, the broker may lose it). Readings leave in insertion order.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from veriot.core.errors import StoreError

BUFFER_FILE = "edge.db"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS devices (did TEXT PRIMARY KEY, next_seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS pending (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  device TEXT NOT NULL,
  seq INTEGER NOT NULL,
  payload BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS rejected (
  id INTEGER PRIMARY KEY,
  device TEXT NOT NULL,
  seq INTEGER NOT NULL,
  reason TEXT NOT NULL,
  detail TEXT NOT NULL,
  at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


@dataclass(frozen=True, slots=True)
class Entry:
    """One buffered reading: `payload` is its wire JSON, signed."""

    id: int
    device: str
    seq: int
    payload: bytes


def first_seq(now: float) -> int:
    """The first sequence number of a device new to this buffer: the time in
    milliseconds, so a key moved to a fresh buffer never reuses a number it signed before
    (veriot flags the jump once as a gap)."""
    return max(1, int(now * 1000))


class EdgeBuffer:
    """The buffer in `directory` (created when missing). Thread-safe."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / BUFFER_FILE
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the edge buffer {self.path}: {exc}") from exc
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def add(self, device: str, sign: Callable[[int], bytes]) -> Entry:
        """Takes `device`'s next sequence number, signs with `sign(seq) -> payload`, and
        stores the result durably, all at once. Raises whatever `sign` raises (nothing is
        stored or used up then)."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                row = self._db.execute(
                    "SELECT next_seq FROM devices WHERE did = ?", (device,)
                ).fetchone()
                seq = first_seq(time.time()) if row is None else int(row[0])
                payload = sign(seq)
                self._db.execute(
                    "INSERT INTO devices VALUES (?, ?) ON CONFLICT(did) DO UPDATE SET "
                    "next_seq = excluded.next_seq",
                    (device, seq + 1),
                )
                cur = self._db.execute(
                    "INSERT INTO pending (device, seq, payload) VALUES (?, ?, ?)",
                    (device, seq, payload),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            assert cur.lastrowid is not None
            return Entry(cur.lastrowid, device, seq, payload)

    def pending(self, after: int = 0, limit: int = 1000) -> list[Entry]:
        """Buffered readings with id > `after`, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, device, seq, payload FROM pending WHERE id > ? ORDER BY id LIMIT ?",
                (after, limit),
            ).fetchall()
        return [Entry(int(i), str(d), int(s), bytes(p)) for i, d, s, p in rows]

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM pending").fetchone()[0])

    def settle(self, stored: Iterable[int], rejected: Sequence[tuple[int, str, str]] = ()) -> int:
        """Removes readings veriot has answered: `stored` ids (accepted or already in
        the log) and `rejected` (id, reason, detail), kept in the `rejected` table for
        the operator. Returns how many were still pending."""
        stored = list(stored)
        now = time.time()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for entry_id, reason, detail in rejected:
                    self._db.execute(
                        "INSERT OR IGNORE INTO rejected SELECT id, device, seq, ?, ?, ? "
                        "FROM pending WHERE id = ?",
                        (reason, detail, now, entry_id),
                    )
                removed = 0
                for entry_id in [*stored, *(r[0] for r in rejected)]:
                    removed += self._db.execute(
                        "DELETE FROM pending WHERE id = ?", (entry_id,)
                    ).rowcount
                self._db.execute(
                    "INSERT INTO counters VALUES ('settled', ?) ON CONFLICT(name) DO UPDATE "
                    "SET value = value + excluded.value",
                    (removed,),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return removed

    def rejected(self) -> list[tuple[str, int, str, str]]:
        """(device, seq, reason, detail) of every reading veriot refused."""
        with self._lock:
            rows = self._db.execute(
                "SELECT device, seq, reason, detail FROM rejected ORDER BY id"
            ).fetchall()
        return [(str(d), int(s), str(r), str(t)) for d, s, r, t in rows]
