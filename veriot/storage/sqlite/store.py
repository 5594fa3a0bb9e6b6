"""The SQLite Store, veriot's default: one file, WAL, every committed append durable.

Writers are serialised by a lock in the process (and by BEGIN IMMEDIATE across
processes); readers use their own pooled connections and see the last committed state.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from veriot.core.canonical import HASH_BYTES
from veriot.core.errors import (
    ConflictError,
    DeviceExistsError,
    InputError,
    MissingNodeError,
    StoreError,
    UnknownDeviceError,
)
from veriot.core.types import (
    ApiKey,
    Checkpoint,
    Device,
    NodeId,
    Page,
    ReadingQuery,
    SecurityEvent,
    SecurityEventKind,
    StoredReading,
)
from veriot.ports import AlertQuery, AppendBatch
from veriot.storage import alerts as alert_index
from veriot.storage import codec, tiles
from veriot.storage.migrations import load_migrations
from veriot.storage.sqlite.pool import ConnectionPool

_READING_COLUMNS = "idx, message, auth, leaf_hash, received_at, gap"
_DEVICE_COLUMNS = "did, public_key, name, type, registered_at, revoked_at, metadata"
_CHECKPOINT_COLUMNS = "log_id, size, root, timestamp, signature"
_ITER_CHUNK = 1000
# One probe of the id index per epoch of log indices (see codec.ID_EPOCH_BITS).
_BY_ID = (
    "WITH RECURSIVE epochs (e) AS (SELECT 0 UNION ALL SELECT e + 1 FROM epochs"
    " WHERE e < (SELECT max(idx) FROM readings) >> 14)"
    " SELECT r.idx, r.message, r.auth, r.leaf_hash, r.received_at, r.gap"
    " FROM epochs JOIN readings AS r ON (r.idx >> 14) = epochs.e AND r.id_key = ?"
)
_IN_CHUNK = 500


def split_statements(script: str) -> Iterator[str]:
    """The SQL statements of a script, each complete (triggers included)."""
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            yield buffer.strip()
            buffer = ""
    if buffer.strip() and any(
        part.strip() and not part.strip().startswith("--") for part in buffer.splitlines()
    ):
        raise StoreError(f"migration ends in an incomplete statement: {buffer.strip()[:80]!r}")


def migrate(conn: sqlite3.Connection) -> list[int]:
    """Applies the pending migrations, each in its own transaction; returns their numbers.
    Raises StoreError when the database has a migration this code does not know."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)"
    )
    known = load_migrations("veriot.storage.sqlite")
    applied: list[int] = []
    for migration in known:
        conn.execute("BEGIN IMMEDIATE")
        try:
            done = conn.execute(
                "SELECT 1 FROM schema_migrations WHERE version = ?", (migration.version,)
            ).fetchone()
            if done is None:
                for statement in split_statements(migration.sql):
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_migrations VALUES (?, ?, ?)",
                    (migration.version, migration.name, time.time()),
                )
                applied.append(migration.version)
            conn.execute("COMMIT")
        except BaseException:
            conn.rollback()
            raise
    (newest,) = conn.execute("SELECT max(version) FROM schema_migrations").fetchone()
    if newest is not None and newest > len(known):
        raise StoreError(
            f"database schema is at migration {newest}; this veriot knows up to {len(known)}"
        )
    return applied


def _device(row: Sequence[Any]) -> Device:
    did, public_key, name, type_, registered_at, revoked_at, metadata = row
    return Device(
        did=did,
        public_key=bytes(public_key),
        name=name,
        type=type_,
        registered_at=registered_at,
        revoked_at=revoked_at,
        metadata=json.loads(metadata),
    )


def _reading(row: Sequence[Any]) -> StoredReading:
    index, message, auth, leaf_hash, received_at, gap = row
    return codec.rebuild_reading(index, message, auth, leaf_hash, received_at, bool(gap))


def _checkpoint(row: Sequence[Any]) -> Checkpoint:
    log_id, size, root, timestamp, signature = row
    return Checkpoint(log_id, size, bytes(root), timestamp, bytes(signature))


def _event(row: Sequence[Any]) -> SecurityEvent:
    device, kind, time_, seq, detail = row
    return SecurityEvent(device, SecurityEventKind(kind), time_, seq, detail)


class SqliteStore:
    """The Store in one SQLite file at `path` (created, with its folder, when missing).

    Safe to share between threads: one writer at a time, any number of readers.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the folder of {path}: {exc}") from exc
        self._pool = ConnectionPool(path)
        self._write_lock = threading.Lock()
        # Devices are never deleted and their row ids never change, so the map only grows.
        self._device_ids: dict[str, int] = {}
        with self._read("migrate") as conn:
            self.applied_migrations = migrate(conn)
        if 2 in self.applied_migrations:
            self._index_old_alerts()

    # -- plumbing -------------------------------------------------------------------

    @contextmanager
    def _read(self, what: str) -> Iterator[sqlite3.Connection]:
        with self._pool.connection() as conn:
            try:
                yield conn
            except sqlite3.Error as exc:
                raise StoreError(f"{what} failed in {self.path}: {exc}") from exc

    @contextmanager
    def _snapshot(self, what: str) -> Iterator[sqlite3.Connection]:
        """A read transaction: every statement in the block sees the same state."""
        with self._read(what) as conn:
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                conn.execute("COMMIT")

    @contextmanager
    def _write(self, what: str) -> Iterator[sqlite3.Connection]:
        """A write transaction, committed when the block ends and rolled back on error."""
        with self._write_lock, self._read(what) as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.rollback()
                raise
            conn.execute("COMMIT")

    def _device_id(self, conn: sqlite3.Connection, did: str) -> int | None:
        found = self._device_ids.get(did)
        if found is None:
            row = conn.execute("SELECT id FROM devices WHERE did = ?", (did,)).fetchone()
            if row is not None:
                found = self._device_ids[did] = row[0]
        return found

    # -- devices --------------------------------------------------------------------

    def add_device(self, device: Device) -> None:
        metadata = json.dumps(device.metadata, sort_keys=True)
        try:
            with self._write("add_device") as conn:
                conn.execute(
                    f"INSERT INTO devices ({_DEVICE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        device.did,
                        device.public_key,
                        device.name,
                        device.type,
                        device.registered_at,
                        device.revoked_at,
                        metadata,
                    ),
                )
        except StoreError as exc:
            if isinstance(exc.__cause__, sqlite3.IntegrityError):
                raise DeviceExistsError(device.did) from None
            raise

    def get_device(self, did: str) -> Device | None:
        with self._read("get_device") as conn:
            row = conn.execute(
                f"SELECT {_DEVICE_COLUMNS} FROM devices WHERE did = ?", (did,)
            ).fetchone()
        return None if row is None else _device(row)

    def list_devices(self) -> list[Device]:
        with self._read("list_devices") as conn:
            rows = conn.execute(
                f"SELECT {_DEVICE_COLUMNS} FROM devices ORDER BY registered_at, did"
            ).fetchall()
        return [_device(row) for row in rows]

    def revoke_device(self, did: str, at: float) -> Device:
        with self._write("revoke_device") as conn:
            conn.execute(
                "UPDATE devices SET revoked_at = coalesce(revoked_at, ?) WHERE did = ?", (at, did)
            )
            row = conn.execute(
                f"SELECT {_DEVICE_COLUMNS} FROM devices WHERE did = ?", (did,)
            ).fetchone()
        if row is None:
            raise UnknownDeviceError(did)
        return _device(row)

    def rotate_key(self, did: str, public_key: bytes) -> Device:
        with self._write("rotate_key") as conn:
            conn.execute("UPDATE devices SET public_key = ? WHERE did = ?", (public_key, did))
            row = conn.execute(
                f"SELECT {_DEVICE_COLUMNS} FROM devices WHERE did = ?", (did,)
            ).fetchone()
        if row is None:
            raise UnknownDeviceError(did)
        return _device(row)

    # -- the log --------------------------------------------------------------------

    @staticmethod
    def _size(conn: sqlite3.Connection) -> int:
        (size,) = conn.execute(
            "SELECT max(coalesce((SELECT max(idx) FROM readings), -1),"
            " coalesce((SELECT max(idx) FROM alerts), -1)) + 1"
        ).fetchone()
        return int(size)

    def log_size(self) -> int:
        with self._read("log_size") as conn:
            return self._size(conn)

    def append(self, batch: AppendBatch) -> None:
        # What can be checked without the database is checked before the transaction.
        pairs = [(r.signed.reading.device, r.signed.reading.seq) for r in batch.readings]
        codec.check_batch_seqs(pairs)
        indices = [r.index for r in batch.readings] + [index for index, _ in batch.alerts]
        try:
            levels = tiles.group_by_level(batch.nodes)
        except InputError as exc:
            raise StoreError(f"append wrote nothing: {exc}") from exc
        try:
            with self._write("append") as conn:
                codec.check_batch_indices(self._size(conn), indices)
                device_ids = {}
                for did, _ in pairs:
                    if did not in device_ids:
                        device_id = self._device_id(conn, did)
                        if device_id is None:
                            raise StoreError(
                                f"append wrote nothing: the batch has readings of "
                                f"unregistered device {did}"
                            )
                        device_ids[did] = device_id
                try:
                    rows = [
                        codec.reading_values(r, device_ids[d])
                        for r, (d, _) in zip(batch.readings, pairs, strict=True)
                    ]
                except InputError as exc:
                    raise StoreError(f"append wrote nothing: {exc}") from exc
                conn.executemany(
                    "INSERT INTO readings VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows
                )
                if batch.alerts:
                    conn.executemany(
                        "INSERT INTO alerts (idx, leaf, device, name, time, score)"
                        " VALUES (?, ?, ?, ?, ?, ?)",
                        [alert_index.alert_row(i, leaf) for i, leaf in batch.alerts],
                    )
                self._write_tiles(conn, levels)
                if batch.events:
                    self._insert_events(conn, batch.events)
        except StoreError as exc:
            if isinstance(exc.__cause__, sqlite3.IntegrityError):
                raise StoreError(f"append wrote nothing: {self._explain(pairs, exc)}") from exc
            raise

    @staticmethod
    def _write_tiles(conn: sqlite3.Connection, levels: dict[int, list[tuple[int, bytes]]]) -> None:
        inserts: list[tuple[int, bytes]] = []
        updates: list[tuple[bytes, int]] = []
        for level, entries in levels.items():
            row = conn.execute(
                "SELECT key, hashes FROM node_tiles WHERE key BETWEEN ? AND ?"
                " ORDER BY key DESC LIMIT 1",
                tiles.level_bounds(level),
            ).fetchone()
            last = None if row is None else (int(row[0]), bytes(row[1]))
            for write in tiles.plan_level(level, last, entries):
                if write.new:
                    inserts.append((write.key, write.hashes))
                else:
                    updates.append((write.hashes, write.key))
        if updates:
            conn.executemany("UPDATE node_tiles SET hashes = ? WHERE key = ?", updates)
        conn.executemany("INSERT INTO node_tiles VALUES (?, ?)", inserts)

    def _explain(self, pairs: Sequence[tuple[str, int]], exc: StoreError) -> str:
        """Names the (device, seq) that made an append fail, when there is one."""
        for device, seq in pairs:
            existing = self.find_seq(device, seq)
            if existing is not None:
                return f"device {device} already has sequence number {seq} (index {existing.index})"
        return str(exc.__cause__ or exc)

    def get_nodes(self, ids: Sequence[NodeId]) -> list[bytes]:
        places = []
        for node in ids:
            place = tiles.locate(node)
            if place is None:  # outside the key range, so never stored
                raise MissingNodeError(node.level, node.index)
            places.append(place)
        keys = sorted({key for key, _ in places})
        found: dict[int, bytes] = {}
        with self._snapshot("get_nodes") as conn:
            for start in range(0, len(keys), _IN_CHUNK):
                chunk = keys[start : start + _IN_CHUNK]
                marks = ",".join("?" * len(chunk))
                found.update(
                    conn.execute(
                        f"SELECT key, hashes FROM node_tiles WHERE key IN ({marks})", chunk
                    )
                )
        out = []
        for node, (key, offset) in zip(ids, places, strict=True):
            value = found.get(key, b"")[offset : offset + HASH_BYTES]
            if len(value) != HASH_BYTES:
                raise MissingNodeError(node.level, node.index)
            out.append(bytes(value))
        return out

    def leaf_data(self, start: int, end: int) -> list[tuple[int, bytes]]:
        with self._snapshot("leaf_data") as conn:
            readings = conn.execute(
                f"SELECT {_READING_COLUMNS} FROM readings WHERE idx >= ? AND idx < ? ORDER BY idx",
                (start, end),
            ).fetchall()
            alerts = conn.execute(
                "SELECT idx, leaf FROM alerts WHERE idx >= ? AND idx < ? ORDER BY idx",
                (start, end),
            ).fetchall()
        out = [(row[0], codec.reading_leaf_data(_reading(row), row[1])) for row in readings]
        out.extend((index, bytes(leaf)) for index, leaf in alerts)
        out.sort(key=lambda pair: pair[0])
        return out

    def list_alert_leaves(self, start: int, end: int) -> list[tuple[int, bytes]]:
        """(index, leaf data) of the alert leaves with start <= index < end, in order."""
        with self._read("list_alert_leaves") as conn:
            rows = conn.execute(
                "SELECT idx, leaf FROM alerts WHERE idx >= ? AND idx < ? ORDER BY idx",
                (start, end),
            ).fetchall()
        return [(index, bytes(leaf)) for index, leaf in rows]

    def add_checkpoint(self, checkpoint: Checkpoint) -> None:
        with self._write("add_checkpoint") as conn:
            row = conn.execute(
                "SELECT root FROM checkpoints WHERE size = ? ORDER BY id DESC LIMIT 1",
                (checkpoint.size,),
            ).fetchone()
            if row is not None and bytes(row[0]) != checkpoint.root:
                raise StoreError(
                    f"checkpoint of size {checkpoint.size} has root {checkpoint.root.hex()}; "
                    f"a stored one has {bytes(row[0]).hex()}"
                )
            conn.execute(
                f"INSERT INTO checkpoints ({_CHECKPOINT_COLUMNS}) VALUES (?, ?, ?, ?, ?)",
                (
                    checkpoint.log_id,
                    checkpoint.size,
                    checkpoint.root,
                    checkpoint.timestamp,
                    checkpoint.signature,
                ),
            )

    def latest_checkpoint(self) -> Checkpoint | None:
        with self._read("latest_checkpoint") as conn:
            row = conn.execute(
                f"SELECT {_CHECKPOINT_COLUMNS} FROM checkpoints ORDER BY id DESC LIMIT 1"
            ).fetchone()
        return None if row is None else _checkpoint(row)

    def checkpoint_at(self, size: int) -> Checkpoint | None:
        with self._read("checkpoint_at") as conn:
            row = conn.execute(
                f"SELECT {_CHECKPOINT_COLUMNS} FROM checkpoints WHERE size = ?"
                " ORDER BY id DESC LIMIT 1",
                (size,),
            ).fetchone()
        return None if row is None else _checkpoint(row)

    def list_checkpoints(self) -> list[Checkpoint]:
        with self._read("list_checkpoints") as conn:
            rows = conn.execute(
                f"SELECT {_CHECKPOINT_COLUMNS} FROM checkpoints ORDER BY id"
            ).fetchall()
        return [_checkpoint(row) for row in rows]

    # -- readings -------------------------------------------------------------------

    def get_reading(self, reading_id: str) -> StoredReading | None:
        if not codec.is_reading_id(reading_id):
            return None
        with self._read("get_reading") as conn:
            rows = conn.execute(_BY_ID, (codec.id_key(reading_id),)).fetchall()
        for row in rows:
            stored = _reading(row)
            if stored.id == reading_id:
                return stored
        return None

    def get_reading_at(self, index: int) -> StoredReading | None:
        if not 0 <= index < 1 << 63:
            return None
        with self._read("get_reading_at") as conn:
            row = conn.execute(
                f"SELECT {_READING_COLUMNS} FROM readings WHERE idx = ?", (index,)
            ).fetchone()
        return None if row is None else _reading(row)

    def find_seq(self, device: str, seq: int) -> StoredReading | None:
        if not 0 <= seq < 1 << 63:
            return None
        with self._read("find_seq") as conn:
            device_id = self._device_id(conn, device)
            if device_id is None:
                return None
            row = conn.execute(
                f"SELECT {_READING_COLUMNS} FROM readings WHERE device_id = ? AND seq = ?",
                (device_id, seq),
            ).fetchone()
        return None if row is None else _reading(row)

    def last_seqs(self) -> dict[str, int]:
        # One index probe per device, rather than a scan of every reading.
        with self._read("last_seqs") as conn:
            rows = conn.execute(
                "SELECT did, (SELECT max(seq) FROM readings WHERE device_id = devices.id)"
                " FROM devices"
            ).fetchall()
        return {did: seq for did, seq in rows if seq is not None}

    def query_readings(self, query: ReadingQuery) -> Page[StoredReading]:
        plan = codec.plan_query(query)
        where = ["idx > ?"]
        params: list[Any] = [plan.after]
        with self._read("query_readings") as conn:
            if plan.device is not None:
                device_id = self._device_id(conn, plan.device)
                if device_id is None:
                    return Page([], None)
                where.append("device_id = ?")
                params.append(device_id)
            if plan.pattern is not None:
                where.append("instr(names, ?) > 0")
                params.append(plan.pattern)
            if plan.since is not None:
                where.append("first_time >= ?")
                params.append(plan.since)
            if plan.until is not None:
                where.append("first_time < ?")
                params.append(plan.until)
            params.append(plan.limit + 1)
            rows = conn.execute(
                f"SELECT {_READING_COLUMNS} FROM readings WHERE {' AND '.join(where)}"
                " ORDER BY idx LIMIT ?",
                params,
            ).fetchall()
        items = [_reading(row) for row in rows[: plan.limit]]
        more = len(rows) > plan.limit
        return Page(items, codec.encode_cursor(items[-1].index) if more else None)

    def iter_readings(self) -> Iterator[StoredReading]:
        # Chunks by index, so no connection is held while the caller works on a chunk;
        # readings appended after the call started are not included.
        end = self.log_size()
        start = 0
        while start < end:
            with self._read("iter_readings") as conn:
                rows = conn.execute(
                    f"SELECT {_READING_COLUMNS} FROM readings WHERE idx >= ? AND idx < ?"
                    " ORDER BY idx",
                    (start, min(start + _ITER_CHUNK, end)),
                ).fetchall()
            yield from (_reading(row) for row in rows)
            start += _ITER_CHUNK

    def recent_readings(
        self, device: str, limit: int, name: str | None = None
    ) -> list[StoredReading]:
        alert_index.check_recent_limit(limit)
        plan = codec.plan_query(ReadingQuery(name=name))
        with self._read("recent_readings") as conn:
            device_id = self._device_id(conn, device)
            if device_id is None:
                return []
            where = "device_id = ?"
            params: list[Any] = [device_id]
            if plan.pattern is not None:
                where += " AND instr(names, ?) > 0"
                params.append(plan.pattern)
            rows = conn.execute(
                f"SELECT {_READING_COLUMNS} FROM readings WHERE {where}"
                " ORDER BY idx DESC LIMIT ?",
                [*params, limit],
            ).fetchall()
        return [_reading(row) for row in reversed(rows)]

    def count_readings(self, device: str) -> int:
        with self._read("count_readings") as conn:
            device_id = self._device_id(conn, device)
            if device_id is None:
                return 0
            (count,) = conn.execute(
                "SELECT count(*) FROM readings WHERE device_id = ?", (device_id,)
            ).fetchone()
        return int(count)

    # -- alerts ---------------------------------------------------------------------

    def _index_old_alerts(self) -> None:
        """Fills the query fields of alert rows written before they existed."""
        with self._write("index alerts") as conn:
            rows = conn.execute("SELECT idx, leaf FROM alerts WHERE device IS NULL").fetchall()
            updates = []
            for index, leaf in rows:
                cols = alert_index.alert_columns(bytes(leaf))
                if cols is not None:
                    updates.append((cols.device, cols.name, cols.time, cols.score, index))
            conn.executemany(
                "UPDATE alerts SET device = ?, name = ?, time = ?, score = ? WHERE idx = ?",
                updates,
            )

    def query_alerts(self, query: AlertQuery) -> Page[tuple[int, bytes]]:
        plan = alert_index.plan_alert_query(query)
        where = ["idx > ?", "device IS NOT NULL"]
        params: list[Any] = [plan.after]
        for column, op, value in (
            ("device", "=", plan.device),
            ("name", "=", plan.name),
            ("time", ">=", plan.since),
            ("time", "<", plan.until),
            ("score", ">=", plan.min_score),
        ):
            if value is not None:
                where.append(f"{column} {op} ?")
                params.append(value)
        params.append(plan.limit + 1)
        with self._read("query_alerts") as conn:
            rows = conn.execute(
                f"SELECT idx, leaf FROM alerts WHERE {' AND '.join(where)} ORDER BY idx LIMIT ?",
                params,
            ).fetchall()
        items = [(int(index), bytes(leaf)) for index, leaf in rows[: plan.limit]]
        more = len(rows) > plan.limit
        return Page(items, codec.encode_cursor(items[-1][0]) if more else None)

    def get_alert(self, index: int) -> bytes | None:
        if not 0 <= index < 1 << 63:
            return None
        with self._read("get_alert") as conn:
            row = conn.execute("SELECT leaf FROM alerts WHERE idx = ?", (index,)).fetchone()
        return None if row is None else bytes(row[0])

    # -- events and keys ------------------------------------------------------------

    @staticmethod
    def _insert_events(conn: sqlite3.Connection, events: Iterable[SecurityEvent]) -> None:
        conn.executemany(
            "INSERT INTO events (device, kind, time, seq, detail) VALUES (?, ?, ?, ?, ?)",
            [(e.device, e.kind.value, e.time, e.seq, e.detail) for e in events],
        )

    def add_events(self, events: Sequence[SecurityEvent]) -> None:
        if events:
            with self._write("add_events") as conn:
                self._insert_events(conn, events)

    def list_events(self, device: str | None = None) -> list[SecurityEvent]:
        columns = "device, kind, time, seq, detail"
        with self._read("list_events") as conn:
            if device is None:
                rows = conn.execute(f"SELECT {columns} FROM events ORDER BY id").fetchall()
            else:
                rows = conn.execute(
                    f"SELECT {columns} FROM events WHERE device = ? ORDER BY id", (device,)
                ).fetchall()
        return [_event(row) for row in rows]

    def count_events(self, device: str) -> dict[SecurityEventKind, int]:
        with self._read("count_events") as conn:
            rows = conn.execute(
                "SELECT kind, count(*) FROM events WHERE device = ? GROUP BY kind", (device,)
            ).fetchall()
        return {SecurityEventKind(kind): int(n) for kind, n in rows}

    def add_api_key(self, key: ApiKey) -> None:
        try:
            with self._write("add_api_key") as conn:
                conn.execute(
                    "INSERT INTO api_keys (key_hash, name, created_at) VALUES (?, ?, ?)",
                    (key.key_hash, key.name, key.created_at),
                )
        except StoreError as exc:
            if isinstance(exc.__cause__, sqlite3.IntegrityError):
                raise ConflictError(
                    f"an API key with hash {key.key_hash.hex()} is stored"
                ) from None
            raise

    def find_api_key(self, key_hash: bytes) -> ApiKey | None:
        with self._read("find_api_key") as conn:
            row = conn.execute(
                "SELECT name, key_hash, created_at FROM api_keys WHERE key_hash = ?", (key_hash,)
            ).fetchone()
        return None if row is None else ApiKey(row[0], bytes(row[1]), row[2])

    def close(self) -> None:
        """Closes every connection; later calls raise StoreError."""
        self._pool.close()
