"""The PostgreSQL Store: the same tables as SQLite, bulk writes through COPY.

Appends take a transaction-scoped advisory lock, so writers in several processes keep the
log contiguous; readers never wait for it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import psycopg
from psycopg import errors as pgerrors

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
from veriot.storage.postgres.pool import ConnectionPool, check_schema

Conn = psycopg.Connection[tuple[Any, ...]]

_READING_COLUMNS = "idx, message, auth, leaf_hash, received_at, gap"
_DEVICE_COLUMNS = "did, public_key, name, type, registered_at, revoked_at, metadata"
_CHECKPOINT_COLUMNS = "log_id, size, root, timestamp, signature"
_COPY_READINGS = (
    "COPY readings (idx, id_key, device_id, seq, message, auth, leaf_hash, received_at,"
    " first_time, names, gap) FROM STDIN (FORMAT BINARY)"
)
_READING_TYPES = [
    "int8", "int8", "int4", "int8", "bytea", "bytea", "bytea", "float8", "float8", "text", "bool"
]  # fmt: skip
_COPY_ALERTS = "COPY alerts (idx, leaf, device, name, time, score) FROM STDIN (FORMAT BINARY)"
_COPY_TILES = "COPY node_tiles (key, hashes) FROM STDIN (FORMAT BINARY)"
_ITER_CHUNK = 1000
# One probe of the id index per epoch of log indices (see codec.ID_EPOCH_BITS).
_BY_ID = (
    f"SELECT {_READING_COLUMNS} FROM readings WHERE id_key = %s AND (idx >> 14) = ANY(ARRAY("
    "SELECT generate_series(0, coalesce((SELECT max(idx) FROM readings), 0) >> 14)))"
)

# Arbitrary constants naming veriot's advisory locks (pg_advisory_xact_lock takes a bigint).
_MIGRATE_LOCK = 0x7665_7269_6F74_0001
_APPEND_LOCK = 0x7665_7269_6F74_0002


def migrate(conn: Conn) -> list[int]:
    """Applies the pending migrations, each in its own transaction; returns their numbers.
    Raises StoreError when the database has a migration this code does not know."""
    known = load_migrations("veriot.storage.postgres")
    applied: list[int] = []
    for migration in known:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATE_LOCK,))
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY,"
                " name TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)"
            )
            done = conn.execute(
                "SELECT 1 FROM schema_migrations WHERE version = %s", (migration.version,)
            ).fetchone()
            if done is None:
                conn.execute(migration.sql.encode())
                conn.execute(
                    "INSERT INTO schema_migrations VALUES (%s, %s, %s)",
                    (migration.version, migration.name, time.time()),
                )
                applied.append(migration.version)
    row = conn.execute("SELECT max(version) FROM schema_migrations").fetchone()
    newest = None if row is None else row[0]
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
    return codec.rebuild_reading(
        index, bytes(message), bytes(auth), bytes(leaf_hash), received_at, bool(gap)
    )


def _checkpoint(row: Sequence[Any]) -> Checkpoint:
    log_id, size, root, timestamp, signature = row
    return Checkpoint(log_id, size, bytes(root), timestamp, bytes(signature))


def _event(row: Sequence[Any]) -> SecurityEvent:
    device, kind, time_, seq, detail = row
    return SecurityEvent(device, SecurityEventKind(kind), time_, seq, detail)


class PostgresStore:
    """The Store in PostgreSQL at `dsn`, in `schema` when given (created when missing)
    or the connection's default search path. Safe to share between threads.

    A call whose connection breaks raises StoreError; the next call reconnects.
    """

    def __init__(
        self, dsn: str, schema: str | None = None, application_name: str = "veriot"
    ) -> None:
        self._pool = ConnectionPool(dsn, schema, application_name)
        self.where = self._pool.where
        # Devices are never deleted and their row ids never change, so the map only grows.
        self._device_ids: dict[str, int] = {}
        try:
            with self._pool.connection("migrate") as conn:
                if schema is not None:
                    conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{check_schema(schema)}"')
                self.applied_migrations = migrate(conn)
            if 2 in self.applied_migrations:
                self._index_old_alerts()
        except BaseException:
            self._pool.close()
            raise

    def _device_id(self, conn: Conn, did: str) -> int | None:
        found = self._device_ids.get(did)
        if found is None:
            row = conn.execute("SELECT id FROM devices WHERE did = %s", (did,)).fetchone()
            if row is not None:
                found = self._device_ids[did] = row[0]
        return found

    # -- devices --------------------------------------------------------------------

    def add_device(self, device: Device) -> None:
        try:
            with self._pool.connection("add_device") as conn:
                conn.execute(
                    f"INSERT INTO devices ({_DEVICE_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                    (
                        device.did,
                        device.public_key,
                        device.name,
                        device.type,
                        device.registered_at,
                        device.revoked_at,
                        json.dumps(device.metadata, sort_keys=True),
                    ),
                )
        except StoreError as exc:
            if isinstance(exc.__cause__, pgerrors.UniqueViolation):
                raise DeviceExistsError(device.did) from None
            raise

    def get_device(self, did: str) -> Device | None:
        with self._pool.connection("get_device") as conn:
            row = conn.execute(
                f"SELECT {_DEVICE_COLUMNS} FROM devices WHERE did = %s", (did,)
            ).fetchone()
        return None if row is None else _device(row)

    def list_devices(self) -> list[Device]:
        with self._pool.connection("list_devices") as conn:
            rows = conn.execute(
                f"SELECT {_DEVICE_COLUMNS} FROM devices ORDER BY registered_at, did"
            ).fetchall()
        return [_device(row) for row in rows]

    def revoke_device(self, did: str, at: float) -> Device:
        with self._pool.connection("revoke_device") as conn:
            row = conn.execute(
                "UPDATE devices SET revoked_at = coalesce(revoked_at, %s) WHERE did = %s"
                f" RETURNING {_DEVICE_COLUMNS}",
                (at, did),
            ).fetchone()
        if row is None:
            raise UnknownDeviceError(did)
        return _device(row)

    def rotate_key(self, did: str, public_key: bytes) -> Device:
        with self._pool.connection("rotate_key") as conn:
            row = conn.execute(
                f"UPDATE devices SET public_key = %s WHERE did = %s RETURNING {_DEVICE_COLUMNS}",
                (public_key, did),
            ).fetchone()
        if row is None:
            raise UnknownDeviceError(did)
        return _device(row)

    # -- the log --------------------------------------------------------------------

    @staticmethod
    def _size(conn: Conn) -> int:
        row = conn.execute(
            "SELECT greatest(coalesce((SELECT max(idx) FROM readings), -1),"
            " coalesce((SELECT max(idx) FROM alerts), -1)) + 1"
        ).fetchone()
        assert row is not None
        return int(row[0])

    def log_size(self) -> int:
        with self._pool.connection("log_size") as conn:
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
            with self._pool.connection("append") as conn, conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_APPEND_LOCK,))
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
                with conn.cursor() as cur:
                    if rows:
                        with cur.copy(_COPY_READINGS) as copy:
                            copy.set_types(_READING_TYPES)
                            for row in rows:
                                copy.write_row(row)
                    if batch.alerts:
                        with cur.copy(_COPY_ALERTS) as copy:
                            copy.set_types(["int8", "bytea", "text", "text", "float8", "float8"])
                            for index, leaf in batch.alerts:
                                copy.write_row(alert_index.alert_row(index, leaf))
                    self._write_tiles(cur, levels)
                if batch.events:
                    self._insert_events(conn, batch.events)
        except StoreError as exc:
            if isinstance(exc.__cause__, pgerrors.UniqueViolation):
                raise StoreError(f"append wrote nothing: {self._explain(pairs, exc)}") from exc
            raise

    @staticmethod
    def _write_tiles(
        cur: psycopg.Cursor[tuple[Any, ...]], levels: dict[int, list[tuple[int, bytes]]]
    ) -> None:
        if not levels:
            return
        # The last tile of every level in the batch, in one round trip.
        order = sorted(levels)
        cur.execute(
            "SELECT t.key, t.hashes FROM unnest(%s::int8[]) AS l (level) CROSS JOIN LATERAL"
            " (SELECT key, hashes FROM node_tiles WHERE key BETWEEN l.level << 56"
            " AND (l.level << 56) | 72057594037927935 ORDER BY key DESC LIMIT 1) AS t",
            (order,),
        )
        lasts = {int(key) >> tiles.NODE_LEVEL_SHIFT: (int(key), bytes(h)) for key, h in cur}
        inserts: list[tuple[int, bytes]] = []
        updates: list[tuple[bytes, int]] = []
        for level in order:
            for write in tiles.plan_level(level, lasts.get(level), levels[level]):
                if write.new:
                    inserts.append((write.key, write.hashes))
                else:
                    updates.append((write.hashes, write.key))
        if updates:
            cur.executemany("UPDATE node_tiles SET hashes = %s WHERE key = %s", updates)
        if inserts:
            with cur.copy(_COPY_TILES) as copy:
                copy.set_types(["int8", "bytea"])
                for insert in inserts:
                    copy.write_row(insert)

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
        with self._pool.connection("get_nodes") as conn:
            found: dict[int, bytes] = {
                int(key): bytes(value)
                for key, value in conn.execute(
                    "SELECT key, hashes FROM node_tiles WHERE key = ANY(%s)", (keys,)
                )
            }
        out = []
        for node, (key, offset) in zip(ids, places, strict=True):
            value = found.get(key, b"")[offset : offset + HASH_BYTES]
            if len(value) != HASH_BYTES:
                raise MissingNodeError(node.level, node.index)
            out.append(value)
        return out

    def leaf_data(self, start: int, end: int) -> list[tuple[int, bytes]]:
        with self._pool.connection("leaf_data") as conn, conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            readings = conn.execute(
                f"SELECT {_READING_COLUMNS} FROM readings"
                " WHERE idx >= %s AND idx < %s ORDER BY idx",
                (start, end),
            ).fetchall()
            alerts = conn.execute(
                "SELECT idx, leaf FROM alerts WHERE idx >= %s AND idx < %s ORDER BY idx",
                (start, end),
            ).fetchall()
        out = [(row[0], codec.reading_leaf_data(_reading(row), bytes(row[1]))) for row in readings]
        out.extend((index, bytes(leaf)) for index, leaf in alerts)
        out.sort(key=lambda pair: pair[0])
        return out

    def list_alert_leaves(self, start: int, end: int) -> list[tuple[int, bytes]]:
        """(index, leaf data) of the alert leaves with start <= index < end, in order."""
        with self._pool.connection("list_alert_leaves") as conn:
            rows = conn.execute(
                "SELECT idx, leaf FROM alerts WHERE idx >= %s AND idx < %s ORDER BY idx",
                (start, end),
            ).fetchall()
        return [(index, bytes(leaf)) for index, leaf in rows]

    def add_checkpoint(self, checkpoint: Checkpoint) -> None:
        with self._pool.connection("add_checkpoint") as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_APPEND_LOCK,))
            row = conn.execute(
                "SELECT root FROM checkpoints WHERE size = %s ORDER BY id DESC LIMIT 1",
                (checkpoint.size,),
            ).fetchone()
            if row is not None and bytes(row[0]) != checkpoint.root:
                raise StoreError(
                    f"checkpoint of size {checkpoint.size} has root {checkpoint.root.hex()}; "
                    f"a stored one has {bytes(row[0]).hex()}"
                )
            conn.execute(
                f"INSERT INTO checkpoints ({_CHECKPOINT_COLUMNS}) VALUES (%s, %s, %s, %s, %s)",
                (
                    checkpoint.log_id,
                    checkpoint.size,
                    checkpoint.root,
                    checkpoint.timestamp,
                    checkpoint.signature,
                ),
            )

    def latest_checkpoint(self) -> Checkpoint | None:
        with self._pool.connection("latest_checkpoint") as conn:
            row = conn.execute(
                f"SELECT {_CHECKPOINT_COLUMNS} FROM checkpoints ORDER BY id DESC LIMIT 1"
            ).fetchone()
        return None if row is None else _checkpoint(row)

    def checkpoint_at(self, size: int) -> Checkpoint | None:
        with self._pool.connection("checkpoint_at") as conn:
            row = conn.execute(
                f"SELECT {_CHECKPOINT_COLUMNS} FROM checkpoints WHERE size = %s"
                " ORDER BY id DESC LIMIT 1",
                (size,),
            ).fetchone()
        return None if row is None else _checkpoint(row)

    def list_checkpoints(self) -> list[Checkpoint]:
        with self._pool.connection("list_checkpoints") as conn:
            rows = conn.execute(
                f"SELECT {_CHECKPOINT_COLUMNS} FROM checkpoints ORDER BY id"
            ).fetchall()
        return [_checkpoint(row) for row in rows]

    # -- readings -------------------------------------------------------------------

    def get_reading(self, reading_id: str) -> StoredReading | None:
        if not codec.is_reading_id(reading_id):
            return None
        with self._pool.connection("get_reading") as conn:
            rows = conn.execute(_BY_ID, (codec.id_key(reading_id),)).fetchall()
        for row in rows:
            stored = _reading(row)
            if stored.id == reading_id:
                return stored
        return None

    def get_reading_at(self, index: int) -> StoredReading | None:
        if not 0 <= index < 1 << 63:
            return None
        with self._pool.connection("get_reading_at") as conn:
            row = conn.execute(
                f"SELECT {_READING_COLUMNS} FROM readings WHERE idx = %s", (index,)
            ).fetchone()
        return None if row is None else _reading(row)

    def find_seq(self, device: str, seq: int) -> StoredReading | None:
        if not 0 <= seq < 1 << 63:
            return None
        with self._pool.connection("find_seq") as conn:
            device_id = self._device_id(conn, device)
            if device_id is None:
                return None
            row = conn.execute(
                f"SELECT {_READING_COLUMNS} FROM readings WHERE device_id = %s AND seq = %s",
                (device_id, seq),
            ).fetchone()
        return None if row is None else _reading(row)

    def last_seqs(self) -> dict[str, int]:
        # One index probe per device, rather than a scan of every reading.
        with self._pool.connection("last_seqs") as conn:
            rows = conn.execute(
                "SELECT did, (SELECT max(seq) FROM readings WHERE device_id = devices.id)"
                " FROM devices"
            ).fetchall()
        return {did: int(seq) for did, seq in rows if seq is not None}

    def query_readings(self, query: ReadingQuery) -> Page[StoredReading]:
        plan = codec.plan_query(query)
        where = ["idx > %s"]
        params: list[Any] = [plan.after]
        with self._pool.connection("query_readings") as conn:
            if plan.device is not None:
                device_id = self._device_id(conn, plan.device)
                if device_id is None:
                    return Page([], None)
                where.append("device_id = %s")
                params.append(device_id)
            if plan.pattern is not None:
                where.append("strpos(names, %s) > 0")
                params.append(plan.pattern)
            if plan.since is not None:
                where.append("first_time >= %s")
                params.append(plan.since)
            if plan.until is not None:
                where.append("first_time < %s")
                params.append(plan.until)
            params.append(plan.limit + 1)
            rows = conn.execute(
                f"SELECT {_READING_COLUMNS} FROM readings WHERE {' AND '.join(where)}"
                " ORDER BY idx LIMIT %s",
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
            with self._pool.connection("iter_readings") as conn:
                rows = conn.execute(
                    f"SELECT {_READING_COLUMNS} FROM readings WHERE idx >= %s AND idx < %s"
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
        with self._pool.connection("recent_readings") as conn:
            device_id = self._device_id(conn, device)
            if device_id is None:
                return []
            where = "device_id = %s"
            params: list[Any] = [device_id]
            if plan.pattern is not None:
                where += " AND strpos(names, %s) > 0"
                params.append(plan.pattern)
            rows = conn.execute(
                f"SELECT {_READING_COLUMNS} FROM readings WHERE {where}"
                " ORDER BY idx DESC LIMIT %s",
                [*params, limit],
            ).fetchall()
        return [_reading(row) for row in reversed(rows)]

    def count_readings(self, device: str) -> int:
        with self._pool.connection("count_readings") as conn:
            device_id = self._device_id(conn, device)
            if device_id is None:
                return 0
            row = conn.execute(
                "SELECT count(*) FROM readings WHERE device_id = %s", (device_id,)
            ).fetchone()
        return 0 if row is None else int(row[0])

    # -- alerts ---------------------------------------------------------------------

    def _index_old_alerts(self) -> None:
        """Fills the query fields of alert rows written before they existed."""
        with self._pool.connection("index alerts") as conn, conn.transaction():
            rows = conn.execute("SELECT idx, leaf FROM alerts WHERE device IS NULL").fetchall()
            updates = []
            for index, leaf in rows:
                cols = alert_index.alert_columns(bytes(leaf))
                if cols is not None:
                    updates.append((cols.device, cols.name, cols.time, cols.score, index))
            if updates:
                with conn.cursor() as cur:
                    cur.executemany(
                        "UPDATE alerts SET device = %s, name = %s, time = %s, score = %s"
                        " WHERE idx = %s",
                        updates,
                    )

    def query_alerts(self, query: AlertQuery) -> Page[tuple[int, bytes]]:
        plan = alert_index.plan_alert_query(query)
        where = ["idx > %s", "device IS NOT NULL"]
        params: list[Any] = [plan.after]
        for column, op, value in (
            ("device", "=", plan.device),
            ("name", "=", plan.name),
            ("time", ">=", plan.since),
            ("time", "<", plan.until),
            ("score", ">=", plan.min_score),
        ):
            if value is not None:
                where.append(f"{column} {op} %s")
                params.append(value)
        params.append(plan.limit + 1)
        with self._pool.connection("query_alerts") as conn:
            rows = conn.execute(
                f"SELECT idx, leaf FROM alerts WHERE {' AND '.join(where)} ORDER BY idx LIMIT %s",
                params,
            ).fetchall()
        items = [(int(index), bytes(leaf)) for index, leaf in rows[: plan.limit]]
        more = len(rows) > plan.limit
        return Page(items, codec.encode_cursor(items[-1][0]) if more else None)

    def get_alert(self, index: int) -> bytes | None:
        if not 0 <= index < 1 << 63:
            return None
        with self._pool.connection("get_alert") as conn:
            row = conn.execute("SELECT leaf FROM alerts WHERE idx = %s", (index,)).fetchone()
        return None if row is None else bytes(row[0])

    # -- events and keys ------------------------------------------------------------

    @staticmethod
    def _insert_events(conn: Conn, events: Iterable[SecurityEvent]) -> None:
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO events (device, kind, time, seq, detail) VALUES (%s, %s, %s, %s, %s)",
                [(e.device, e.kind.value, e.time, e.seq, e.detail) for e in events],
            )

    def add_events(self, events: Sequence[SecurityEvent]) -> None:
        if events:
            with self._pool.connection("add_events") as conn, conn.transaction():
                self._insert_events(conn, events)

    def list_events(self, device: str | None = None) -> list[SecurityEvent]:
        columns = "device, kind, time, seq, detail"
        with self._pool.connection("list_events") as conn:
            if device is None:
                rows = conn.execute(f"SELECT {columns} FROM events ORDER BY id").fetchall()
            else:
                rows = conn.execute(
                    f"SELECT {columns} FROM events WHERE device = %s ORDER BY id", (device,)
                ).fetchall()
        return [_event(row) for row in rows]

    def count_events(self, device: str) -> dict[SecurityEventKind, int]:
        with self._pool.connection("count_events") as conn:
            rows = conn.execute(
                "SELECT kind, count(*) FROM events WHERE device = %s GROUP BY kind", (device,)
            ).fetchall()
        return {SecurityEventKind(kind): int(n) for kind, n in rows}

    def add_api_key(self, key: ApiKey) -> None:
        try:
            with self._pool.connection("add_api_key") as conn:
                conn.execute(
                    "INSERT INTO api_keys (key_hash, name, created_at) VALUES (%s, %s, %s)",
                    (key.key_hash, key.name, key.created_at),
                )
        except StoreError as exc:
            if isinstance(exc.__cause__, pgerrors.UniqueViolation):
                raise ConflictError(
                    f"an API key with hash {key.key_hash.hex()} is stored"
                ) from None
            raise

    def find_api_key(self, key_hash: bytes) -> ApiKey | None:
        with self._pool.connection("find_api_key") as conn:
            row = conn.execute(
                "SELECT name, key_hash, created_at FROM api_keys WHERE key_hash = %s",
                (key_hash,),
            ).fetchone()
        return None if row is None else ApiKey(row[0], bytes(row[1]), row[2])

    def close(self) -> None:
        """Closes every connection; later calls raise StoreError."""
        self._pool.close()
