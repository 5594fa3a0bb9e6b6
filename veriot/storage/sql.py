"""What the SQL stores share: the Store port written once over the common schema.

`SqlStore` holds every part that does not depend on the database: query planning and
assembly, row -> domain decoding, pagination, validation of batches, tile planning and
the mapping of constraint violations to typed errors. A backend subclass supplies what
differs, and only that:

- how a connection, a consistent read and a write transaction are obtained
  (`_connection`, `_snapshot`, `_write`; `_write(log=True)` must also keep writers in
  other processes from extending the log at the same time);
- how a statement runs (`_execute`, `_executemany`): SQL here is written with qmark
  placeholders (`?`), which a backend with another style rewrites;
- the bulk insert path (`_bulk_insert`: executemany, COPY, ...);
- the tile lookups (`_last_tiles`, `_fetch_tiles`), where one round trip per level or
  per chunk of keys is the difference between dialects, and optionally how tiles are
  written (`_store_tiles`; SQLite does it in one upsert);
- a few statements in the dialect (`LOG_SIZE_SQL`, `BY_ID_SQL`, `NAME_MATCH_SQL`,
  `LEGACY_READINGS_SQL`) and the driver's exception for a unique violation
  (`UNIQUE_VIOLATION`).

Readings are stored as segments (see codec.py): a read finds candidate segment rows in
SQL by their coarse columns, then expands them and filters the readings exactly.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import replace
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from mypy_extensions import mypyc_attr

from veriot.core.canonical import (
    HASH_BYTES,
    device_prefix,
    message_device,
    reading_id,
    reading_leaf,
)
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
    IndexMismatch,
    NodeId,
    Page,
    ReadingQuery,
    SecurityEvent,
    SecurityEventKind,
    Segment,
    StoredReading,
)
from veriot.ledger.segment import check_segment, message_columns, segment_of, segment_readings
from veriot.ports import AlertQuery, AppendBatch
from veriot.storage import alerts as alert_index
from veriot.storage import codec, tiles

SEGMENT_COLUMNS = "first_idx, received_at, body"
LEGACY_COLUMNS = "idx, message, auth, leaf_hash, received_at, gap, device_id"
DEVICE_COLUMNS = "did, public_key, name, type, registered_at, revoked_at, metadata"
CHECKPOINT_COLUMNS = "log_id, size, root, timestamp, signature"
EVENT_COLUMNS = "device, kind, time, seq, detail"
ITER_CHUNK = 1000
"""Log indices whose segments iter_readings reads per round trip."""
SCAN_CHUNK = 64
"""The most segment rows a query reads per round trip (it starts with fewer)."""
CONVERT_CHUNK = 5000
"""Legacy reading rows converted to segments per transaction."""
SEQ_CHECK_CHUNK = 1000
"""Devices whose stored seqs one statement of an append checks (two parameters each)."""
SEQ_SPAN_GAP = 256
"""find_seqs looks up seqs further apart than this with separate queries."""
MAX_INDEX = 1 << 63
"""Indices and sequence numbers are signed 64-bit columns; larger ones are never stored."""


class Table:
    """A table that batches are bulk-inserted into, with the columns each row fills."""

    __slots__ = ("columns", "insert", "name")

    def __init__(self, name: str, columns: tuple[str, ...]) -> None:
        self.name = name
        self.columns = columns
        marks = ", ".join("?" * len(columns))
        self.insert = f"INSERT INTO {name} ({', '.join(columns)}) VALUES ({marks})"


SEGMENTS = Table(
    "segments",
    (
        "first_idx", "count", "device_id", "min_seq", "max_seq", "min_time", "max_time",
        "names", "received_at", "body",
    ),
)  # fmt: skip
"""The columns of `codec.segment_values`, in its order."""
READING_IDS = Table("reading_ids", ("epoch", "id_key", "idx"))
"""The columns of `codec.id_values`, in its order."""
RECENT_IDS = Table("recent_ids", ("first_idx", "id_keys"))
"""The columns of `codec.RecentIdValues`, in its order."""
ID_CHUNKS = Table("id_chunks", ("epoch", "bucket", "id_keys", "offsets"))
"""The columns of `codec.IdChunkValues`, in its order."""
ALERTS = Table("alerts", ("idx", "leaf", "device", "name", "time", "score"))
"""The columns of `alerts.alert_row`, in its order."""
TILES = Table("node_tiles", ("key", "hashes"))
EVENTS = Table("events", ("device", "kind", "time", "seq", "detail"))
API_KEYS = Table("api_keys", ("key_hash", "name", "created_at"))


class Rows(Protocol):
    """What a driver's cursor gives back after a statement."""

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


# -- rows -> domain -------------------------------------------------------------------


def device_from_row(row: Sequence[Any]) -> Device:
    """A Device from the DEVICE_COLUMNS of a row."""
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


def readings_from_row(
    row: Sequence[Any], start: int = 0, end: int | None = None
) -> list[StoredReading]:
    """The StoredReadings of the SEGMENT_COLUMNS of a row (those at positions start..end-1
    of the segment when given). Raises StoreError when the row is corrupt."""
    first_idx, received_at, body = row[0], row[1], row[2]
    segment = codec.decode_segment(int(first_idx), received_at, bytes(body), start, end)
    try:
        # decode_segment derived the seqs, times and names from the messages themselves.
        return segment_readings(segment, columns=False)
    except InputError as exc:
        raise StoreError(f"stored segment at index {first_idx} is corrupt: {exc}") from exc


def readings_of_seqs(row: Sequence[Any], seqs: Collection[int]) -> dict[int, StoredReading]:
    """The first reading of each of `seqs` that the segment row (SEGMENT_COLUMNS) holds,
    by seq; only the stretch of the segment from the first to the last of them is
    decoded. Raises StoreError when the row is corrupt."""
    offsets: dict[int, int] = {}
    for offset, seq in enumerate(codec.segment_seqs(bytes(row[2]))):
        if seq in seqs and seq not in offsets:
            offsets[seq] = offset
    if not offsets:
        return {}
    start = min(offsets.values())
    readings = readings_from_row(row, start, max(offsets.values()) + 1)
    return {seq: readings[offset - start] for seq, offset in offsets.items()}


def seq_spans(seqs: Sequence[int]) -> list[tuple[int, int]]:
    """Sorted, distinct `seqs` as (lowest, highest) spans, split where two are more than
    SEQ_SPAN_GAP apart: one query per span finds the segments that may hold them without
    reading every segment in between."""
    spans: list[tuple[int, int]] = []
    low = high = seqs[0]
    for seq in seqs[1:]:
        if seq - high > SEQ_SPAN_GAP:
            spans.append((low, high))
            low = seq
        high = seq
    spans.append((low, high))
    return spans


def legacy_segment(row: Sequence[Any]) -> tuple[Segment, int]:
    """(one-reading segment, device row id) of a row of the legacy readings table, in
    LEGACY_COLUMNS. Raises StoreError when the row is corrupt."""
    index, message, auth, leaf_hash, received_at, gap, device_id = row
    stored = codec.rebuild_reading(
        index, bytes(message), bytes(auth), bytes(leaf_hash), received_at, bool(gap)
    )
    try:
        (segment,) = segment_of([replace(stored, message=bytes(message))])
    except InputError as exc:
        raise StoreError(f"legacy reading at index {index} is corrupt: {exc}") from exc
    return segment, int(device_id)


def checkpoint_from_row(row: Sequence[Any]) -> Checkpoint:
    """A Checkpoint from the CHECKPOINT_COLUMNS of a row."""
    log_id, size, root, timestamp, signature = row
    return Checkpoint(log_id, size, bytes(root), timestamp, bytes(signature))


def event_from_row(row: Sequence[Any]) -> SecurityEvent:
    """A SecurityEvent from the EVENT_COLUMNS of a row."""
    device, kind, time_, seq, detail = row
    return SecurityEvent(device, SecurityEventKind(kind), time_, seq, detail)


def page_of(
    rows: Sequence[Sequence[Any]], limit: int
) -> tuple[Sequence[Sequence[Any]], str | None]:
    """The first `limit` of `rows` (fetched with LIMIT limit + 1, log index first) and the
    cursor after the last of them when there are more."""
    more = len(rows) > limit
    items = rows[:limit]
    return items, codec.encode_cursor(int(items[-1][0])) if more else None


ConnT = TypeVar("ConnT")


# Compiled with mypyc (setup.py); each database's store is an interpreted subclass.
@mypyc_attr(allow_interpreted_subclasses=True)
class SqlStore(ABC, Generic[ConnT]):
    """The Store port over the shared SQL schema; subclasses name the database.

    Subclasses call `__init__` first, then migrate, then `_opened(applied)`.
    """

    LOG_SIZE_SQL: ClassVar[str]
    """One row, one column: the log size (one past the highest reading or alert index)."""
    BY_ID_SQL: ClassVar[str]
    """The idx of the reading_ids rows whose id_key is the one parameter, every epoch."""
    NAME_MATCH_SQL: ClassVar[str]
    """A condition true when the parameter is a substring of `names`."""
    CHUNKS_OF_BUCKET_SQL: ClassVar[str]
    """The epoch, id_keys and offsets of the id_chunks rows whose bucket is the first
    parameter, ending in a WHERE clause that more conditions may follow (AND ...)."""
    KEY_MATCH_SQL: ClassVar[str]
    """A condition true when the parameter (8 bytes) is a substring of `id_keys`, or ""
    where fetching every row of a lookup's candidates and searching them with
    bytes.find is faster (SQLite: instr() tries every byte offset in turn)."""
    LEGACY_READINGS_SQL: ClassVar[str]
    """A row when the legacy `readings` table (migrations 1 and 2) exists, else none."""
    UNIQUE_VIOLATION: ClassVar[type[Exception]]
    """The driver's exception for a unique (or primary key) constraint violation."""

    applied_migrations: list[int]

    def __init__(self) -> None:
        # Devices are never deleted and their row ids never change, so the map only grows.
        self._device_ids: dict[str, int] = {}

    def _opened(self, applied: list[int]) -> None:
        """Records the migrations that opening applied and finishes what they need."""
        self.applied_migrations = applied
        if 2 in applied:
            self._index_old_alerts()
        self._convert_legacy_readings()

    # -- what a backend supplies ----------------------------------------------------

    @abstractmethod
    def _connection(self, what: str) -> AbstractContextManager[ConnT]:
        """A connection in autocommit mode for the block; driver errors become StoreError
        naming `what`, with the driver's exception as the cause."""

    @abstractmethod
    def _snapshot(self, what: str) -> AbstractContextManager[ConnT]:
        """As `_connection`, in a read transaction: every statement sees the same state."""

    @abstractmethod
    def _write(self, what: str, *, log: bool = False) -> AbstractContextManager[ConnT]:
        """As `_connection`, in a write transaction committed when the block ends and
        rolled back on error. With `log`, no other writer extends the log meanwhile."""

    @abstractmethod
    def _execute(self, conn: ConnT, sql: str, params: Sequence[Any] = ()) -> Rows:
        """Runs one statement (qmark placeholders)."""

    @abstractmethod
    def _executemany(self, conn: ConnT, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Runs one statement (qmark placeholders) for each of `rows`."""

    @abstractmethod
    def _bulk_insert(self, conn: ConnT, table: Table, rows: Sequence[Sequence[Any]]) -> None:
        """Inserts `rows` (values of `table.columns`, in order) by the fastest path.
        Precondition: `rows` is not empty."""

    @abstractmethod
    def _last_tiles(self, conn: ConnT, levels: Sequence[int]) -> dict[int, tuple[int, bytes]]:
        """(key, hashes) of the last stored tile of each of `levels` that has one."""

    @abstractmethod
    def _fetch_tiles(self, keys: Sequence[int]) -> dict[int, bytes]:
        """The hashes of the stored tiles among `keys` (sorted, distinct), by key."""

    @abstractmethod
    def close(self) -> None:
        """Closes every connection; later calls raise StoreError."""

    # -- plumbing -------------------------------------------------------------------

    def _is_duplicate(self, exc: StoreError) -> bool:
        return isinstance(exc.__cause__, self.UNIQUE_VIOLATION)

    def _device_id(self, conn: ConnT, did: str) -> int | None:
        found = self._device_ids.get(did)
        if found is None:
            row = self._execute(conn, "SELECT id FROM devices WHERE did = ?", (did,)).fetchone()
            if row is not None:
                found = self._device_ids[did] = row[0]
        return found

    def _size(self, conn: ConnT) -> int:
        row = self._execute(conn, self.LOG_SIZE_SQL).fetchone()
        assert row is not None
        return int(row[0])

    # -- devices --------------------------------------------------------------------

    def add_device(self, device: Device) -> None:
        values = (
            device.did,
            device.public_key,
            device.name,
            device.type,
            device.registered_at,
            device.revoked_at,
            json.dumps(device.metadata, sort_keys=True),
        )
        try:
            with self._write("add_device") as conn:
                self._execute(
                    conn,
                    f"INSERT INTO devices ({DEVICE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    values,
                )
        except StoreError as exc:
            if self._is_duplicate(exc):
                raise DeviceExistsError(device.did) from None
            raise

    def _select_device(self, conn: ConnT, did: str) -> Device | None:
        sql = f"SELECT {DEVICE_COLUMNS} FROM devices WHERE did = ?"
        row = self._execute(conn, sql, (did,)).fetchone()
        return None if row is None else device_from_row(row)

    def get_device(self, did: str) -> Device | None:
        with self._connection("get_device") as conn:
            return self._select_device(conn, did)

    def list_devices(self) -> list[Device]:
        with self._connection("list_devices") as conn:
            rows = self._execute(
                conn, f"SELECT {DEVICE_COLUMNS} FROM devices ORDER BY registered_at, did"
            ).fetchall()
        return [device_from_row(row) for row in rows]

    def _update_device(self, what: str, did: str, assignment: str, value: Any) -> Device:
        """Sets one column of the device (`assignment` has one placeholder, for `value`)
        and returns it. Raises UnknownDeviceError."""
        with self._write(what) as conn:
            self._execute(conn, f"UPDATE devices SET {assignment} WHERE did = ?", (value, did))
            device = self._select_device(conn, did)
        if device is None:
            raise UnknownDeviceError(did)
        return device

    def revoke_device(self, did: str, at: float) -> Device:
        return self._update_device("revoke_device", did, "revoked_at = coalesce(revoked_at, ?)", at)

    def rotate_key(self, did: str, public_key: bytes) -> Device:
        return self._update_device("rotate_key", did, "public_key = ?", public_key)

    # -- the log --------------------------------------------------------------------

    def log_size(self) -> int:
        with self._connection("log_size") as conn:
            return self._size(conn)

    def append(self, batch: AppendBatch) -> None:
        # What can be checked without the database is checked before the transaction.
        try:
            segments = [*batch.segments, *segment_of(batch.readings)]
            for segment in segments:
                check_segment(segment, columns=not batch.columns_derived)
            levels = tiles.group_by_level(batch.nodes)
        except InputError as exc:
            raise StoreError(f"append wrote nothing: {exc}") from exc
        seqs = codec.batch_seqs(segments)
        ranges = [(s.first_index, s.end_index) for s in segments]
        ranges += [(index, index + 1) for index, _ in batch.alerts]
        with self._write("append", log=True) as conn:
            size = self._size(conn)
            codec.check_batch_ranges(size, ranges)
            device_ids = self._batch_device_ids(conn, seqs)
            self._check_new_seqs(conn, seqs, device_ids)
            try:
                rows = [codec.segment_values(s, device_ids[s.device]) for s in segments]
            except InputError as exc:
                raise StoreError(f"append wrote nothing: {exc}") from exc
            if rows:
                self._bulk_insert(conn, SEGMENTS, rows)
                self._bulk_insert(conn, RECENT_IDS, codec.recent_id_rows(segments))
            boundary = codec.ids_to_seal(size, size + sum(end - start for start, end in ranges))
            if boundary is not None:
                self._seal_ids(conn, boundary)
            if batch.alerts:
                alert_rows = [alert_index.alert_row(i, leaf) for i, leaf in batch.alerts]
                self._bulk_insert(conn, ALERTS, alert_rows)
            self._write_tiles(conn, levels)
            if batch.events:
                self._insert_events(conn, batch.events)

    def _seal_ids(self, conn: ConnT, boundary: int) -> None:
        """Moves the ids below `boundary` from recent_ids to id_chunks (see
        codec.ids_to_seal)."""
        recent = self._execute(
            conn, "SELECT first_idx, id_keys FROM recent_ids WHERE first_idx < ?", (boundary,)
        ).fetchall()
        chunks, rest = codec.seal_recent_ids(
            [(int(first), bytes(keys)) for first, keys in recent], boundary
        )
        self._execute(conn, "DELETE FROM recent_ids WHERE first_idx < ?", (boundary,))
        if rest:
            self._bulk_insert(conn, RECENT_IDS, rest)
        if chunks:
            self._bulk_insert(conn, ID_CHUNKS, chunks)

    def _batch_device_ids(self, conn: ConnT, devices: Iterable[str]) -> dict[str, int]:
        """The row ids of the devices of a batch. Raises StoreError for an unknown one."""
        device_ids: dict[str, int] = {}
        for did in devices:
            device_id = self._device_id(conn, did)
            if device_id is None:
                raise StoreError(
                    f"append wrote nothing: the batch has readings of unregistered device {did}"
                )
            device_ids[did] = device_id
        return device_ids

    def _check_new_seqs(
        self, conn: ConnT, seqs: dict[str, set[int]], device_ids: dict[str, int]
    ) -> None:
        """Raises StoreError when a device already has one of its `seqs` stored.

        Only segments whose max_seq reaches a device's lowest new seq can hold one; the
        sequencer sends seqs above every stored one, so this is usually one empty index
        probe per device, made in one statement for up to SEQ_CHECK_CHUNK devices."""
        dids = list(seqs)
        by_id = {device_ids[did]: did for did in dids}
        for start in range(0, len(dids), SEQ_CHECK_CHUNK):
            chunk = dids[start : start + SEQ_CHECK_CHUNK]
            where = " OR ".join(["(device_id = ? AND max_seq >= ?)"] * len(chunk))
            params = [v for did in chunk for v in (device_ids[did], min(seqs[did]))]
            rows = self._execute(
                conn,
                f"SELECT {SEGMENT_COLUMNS}, min_seq, device_id FROM segments WHERE {where}",
                params,
            ).fetchall()
            for row in rows:
                did = by_id[row[4]]
                if row[3] > max(seqs[did]):  # every stored seq is above the new ones
                    continue
                for offset, seq in enumerate(codec.segment_seqs(bytes(row[2]))):
                    if seq in seqs[did]:
                        raise StoreError(
                            f"append wrote nothing: device {did} already has sequence number"
                            f" {seq} (index {int(row[0]) + offset})"
                        )

    def _write_tiles(self, conn: ConnT, levels: dict[int, tiles.NodeRun]) -> None:
        if not levels:
            return
        order = sorted(levels)
        lasts = self._last_tiles(conn, order)
        inserts: list[tuple[int, bytes]] = []
        updates: list[tuple[bytes, int]] = []
        for level in order:
            for write in tiles.plan_level(level, lasts.get(level), levels[level]):
                if write.new:
                    inserts.append((write.key, write.hashes))
                else:
                    updates.append((write.hashes, write.key))
        self._store_tiles(conn, inserts, updates)

    def _store_tiles(
        self, conn: ConnT, inserts: list[tuple[int, bytes]], updates: list[tuple[bytes, int]]
    ) -> None:
        """Writes new tiles (key, hashes) and grown ones (hashes, key)."""
        if updates:
            self._executemany(conn, "UPDATE node_tiles SET hashes = ? WHERE key = ?", updates)
        if inserts:
            self._bulk_insert(conn, TILES, inserts)

    def get_nodes(self, ids: Sequence[NodeId]) -> list[bytes]:
        places = []
        for node in ids:
            place = tiles.locate(node)
            if place is None:  # outside the key range, so never stored
                raise MissingNodeError(node.level, node.index)
            places.append(place)
        found = self._fetch_tiles(sorted({key for key, _ in places}))
        out = []
        for node, (key, offset) in zip(ids, places, strict=True):
            value = found.get(key, b"")[offset : offset + HASH_BYTES]
            if len(value) != HASH_BYTES:
                raise MissingNodeError(node.level, node.index)
            out.append(value)
        return out

    def leaf_data(self, start: int, end: int) -> list[tuple[int, bytes]]:
        out: list[tuple[int, bytes]] = []
        with self._snapshot("leaf_data") as conn:
            rows = self._execute(
                conn,
                f"SELECT {SEGMENT_COLUMNS} FROM segments WHERE first_idx >= ? AND first_idx < ?"
                " ORDER BY first_idx",
                (self._segment_start(conn, start), end),
            ).fetchall()
            alerts = self._select_alert_leaves(conn, start, end)
        for row in rows:
            out.extend(
                (r.index, reading_leaf(r.signed, r.message))
                for r in readings_from_row(row)
                if start <= r.index < end
            )
        out.extend(alerts)
        out.sort(key=lambda pair: pair[0])
        return out

    def _select_alert_leaves(self, conn: ConnT, start: int, end: int) -> list[tuple[int, bytes]]:
        rows = self._execute(
            conn,
            "SELECT idx, leaf FROM alerts WHERE idx >= ? AND idx < ? ORDER BY idx",
            (start, end),
        ).fetchall()
        return [(index, bytes(leaf)) for index, leaf in rows]

    def list_alert_leaves(self, start: int, end: int) -> list[tuple[int, bytes]]:
        """(index, leaf data) of the alert leaves with start <= index < end, in order."""
        with self._connection("list_alert_leaves") as conn:
            return self._select_alert_leaves(conn, start, end)

    def add_checkpoint(self, checkpoint: Checkpoint) -> None:
        with self._write("add_checkpoint", log=True) as conn:
            row = self._execute(
                conn,
                "SELECT root FROM checkpoints WHERE size = ? ORDER BY id DESC LIMIT 1",
                (checkpoint.size,),
            ).fetchone()
            if row is not None and bytes(row[0]) != checkpoint.root:
                raise StoreError(
                    f"checkpoint of size {checkpoint.size} has root {checkpoint.root.hex()}; "
                    f"a stored one has {bytes(row[0]).hex()}"
                )
            self._execute(
                conn,
                f"INSERT INTO checkpoints ({CHECKPOINT_COLUMNS}) VALUES (?, ?, ?, ?, ?)",
                (
                    checkpoint.log_id,
                    checkpoint.size,
                    checkpoint.root,
                    checkpoint.timestamp,
                    checkpoint.signature,
                ),
            )

    def _checkpoints(self, what: str, tail: str, params: Sequence[Any] = ()) -> list[Checkpoint]:
        with self._connection(what) as conn:
            rows = self._execute(
                conn, f"SELECT {CHECKPOINT_COLUMNS} FROM checkpoints {tail}", params
            ).fetchall()
        return [checkpoint_from_row(row) for row in rows]

    def latest_checkpoint(self) -> Checkpoint | None:
        found = self._checkpoints("latest_checkpoint", "ORDER BY id DESC LIMIT 1")
        return found[0] if found else None

    def checkpoint_at(self, size: int) -> Checkpoint | None:
        found = self._checkpoints(
            "checkpoint_at", "WHERE size = ? ORDER BY id DESC LIMIT 1", (size,)
        )
        return found[0] if found else None

    def list_checkpoints(self) -> list[Checkpoint]:
        return self._checkpoints("list_checkpoints", "ORDER BY id")

    # -- readings -------------------------------------------------------------------

    def _segment_start(self, conn: ConnT, index: int, device_id: int | None = None) -> int:
        """The first index of the last segment (of the device, when given) that starts at
        or before `index`, or `index` when there is none: segments from there on hold
        every reading at `index` or later."""
        sql = "SELECT max(first_idx) FROM segments WHERE first_idx <= ?"
        params: list[Any] = [index]
        if device_id is not None:
            sql += " AND device_id = ?"
            params.append(device_id)
        row = self._execute(conn, sql, params).fetchone()
        return index if row is None or row[0] is None else int(row[0])

    def _reading_at(self, conn: ConnT, index: int) -> StoredReading | None:
        row = self._execute(
            conn,
            f"SELECT {SEGMENT_COLUMNS}, count FROM segments WHERE first_idx <= ?"
            " ORDER BY first_idx DESC LIMIT 1",
            (index,),
        ).fetchone()
        if row is None or index >= row[0] + row[3]:
            return None
        offset = index - int(row[0])
        return readings_from_row(row, offset, offset + 1)[0]

    def get_reading(self, reading_id: str) -> StoredReading | None:
        if not codec.is_reading_id(reading_id):
            return None
        key = codec.id_key_bytes(reading_id)
        with self._snapshot("get_reading") as conn:
            # One snapshot: an append that seals ids moves them from recent_ids to id_chunks.
            rows = self._execute(conn, self.BY_ID_SQL, (codec.id_key(reading_id),)).fetchall()
            found = [int(index) for (index,) in rows]
            # Rows that may hold the key (its bucket's chunk of each epoch, every recent
            # row), searched for it here.
            match, with_key = self.KEY_MATCH_SQL, [key] if self.KEY_MATCH_SQL else []
            for epoch, keys, offsets in self._execute(
                conn,
                self.CHUNKS_OF_BUCKET_SQL + (f" AND {match}" if match else ""),
                [key[0], *with_key],
            ).fetchall():
                found += codec.chunk_matches(int(epoch), bytes(keys), bytes(offsets), key)
            for first, keys in self._execute(
                conn,
                "SELECT first_idx, id_keys FROM recent_ids" + (f" WHERE {match}" if match else ""),
                with_key,
            ).fetchall():
                found += codec.recent_id_matches(int(first), bytes(keys), key)
            for index in found:
                stored = self._reading_at(conn, index)
                if stored is not None and stored.id == reading_id:
                    return stored
        return None

    def get_reading_at(self, index: int) -> StoredReading | None:
        if not 0 <= index < MAX_INDEX:
            return None
        with self._connection("get_reading_at") as conn:
            return self._reading_at(conn, index)

    def find_seqs(self, device: str, seqs: Iterable[int]) -> dict[int, StoredReading]:
        wanted = sorted({seq for seq in seqs if 0 <= seq < MAX_INDEX})
        if not wanted:
            return {}
        with self._connection("find_seqs") as conn:
            device_id = self._device_id(conn, device)
            if device_id is None:
                return {}
            rows: dict[int, Sequence[Any]] = {}
            for low, high in seq_spans(wanted):
                for row in self._execute(
                    conn,
                    f"SELECT {SEGMENT_COLUMNS} FROM segments"
                    " WHERE device_id = ? AND min_seq <= ? AND max_seq >= ?",
                    (device_id, high, low),
                ):
                    rows[int(row[0])] = row
        found: dict[int, StoredReading] = {}
        missing = set(wanted)
        for first in sorted(rows):  # the first stored reading of a seq is the one found
            found.update(readings_of_seqs(rows[first], missing))
            missing.difference_update(found)
            if not missing:
                break
        return found

    def last_seqs(self) -> dict[str, int]:
        # One index probe per device, rather than a scan of every segment.
        with self._connection("last_seqs") as conn:
            rows = self._execute(
                conn,
                "SELECT did, (SELECT max(max_seq) FROM segments WHERE device_id = devices.id)"
                " FROM devices",
            ).fetchall()
        return {did: int(seq) for did, seq in rows if seq is not None}

    def _scan(
        self, what: str, where: list[str], params: list[Any], bound: int, descending: bool
    ) -> Iterator[list[Any]]:
        """Chunks of segment rows (SEGMENT_COLUMNS) matching `where`, by first_idx from
        `bound` up (ascending) or down (descending), bound included. The chunks start
        small and grow, since a caller usually wants few readings."""
        size = 2
        while True:
            op, order = ("<=", "DESC") if descending else (">=", "ASC")
            with self._connection(what) as conn:
                rows = self._execute(
                    conn,
                    f"SELECT {SEGMENT_COLUMNS} FROM segments"
                    f" WHERE {' AND '.join([f'first_idx {op} ?', *where])}"
                    f" ORDER BY first_idx {order} LIMIT ?",
                    [bound, *params, size],
                ).fetchall()
            if rows:
                yield rows
            if len(rows) < size:
                return
            bound = int(rows[-1][0]) + (-1 if descending else 1)
            size = min(size * 2, SCAN_CHUNK)

    def query_readings(self, query: ReadingQuery) -> Page[StoredReading]:
        plan = codec.plan_query(query)
        where: list[str] = []
        params: list[Any] = []
        with self._connection("query_readings") as conn:
            device_id = None
            if plan.device is not None:
                device_id = self._device_id(conn, plan.device)
                if device_id is None:
                    return Page([], None)
                where.append("device_id = ?")
                params.append(device_id)
            start = self._segment_start(conn, plan.after + 1, device_id)
        # Coarse filters on the segment rows; each reading is checked exactly below.
        for condition, value in (
            (self.NAME_MATCH_SQL, plan.pattern),
            ("max_time >= ?", plan.since),
            ("min_time < ?", plan.until),
        ):
            if value is not None:
                where.append(condition)
                params.append(value)
        items: list[StoredReading] = []
        for rows in self._scan("query_readings", where, params, start, descending=False):
            for row in rows:
                items.extend(r for r in readings_from_row(row) if codec.plan_matches(plan, r))
            if len(items) > plan.limit:
                break
        more = len(items) > plan.limit
        items = items[: plan.limit]
        return Page(items, codec.encode_cursor(items[-1].index) if more else None)

    def iter_readings(self) -> Iterator[StoredReading]:
        # Chunks by index, so no connection is held while the caller works on a chunk;
        # readings appended after the call started are not included.
        end = self.log_size()
        start = 0
        while start < end:
            with self._connection("iter_readings") as conn:
                rows = self._execute(
                    conn,
                    f"SELECT {SEGMENT_COLUMNS} FROM segments WHERE first_idx >= ?"
                    " AND first_idx < ? ORDER BY first_idx",
                    (start, min(start + ITER_CHUNK, end)),
                ).fetchall()
            for row in rows:
                yield from readings_from_row(row)
            start += ITER_CHUNK

    def recent_readings(
        self, device: str, limit: int, name: str | None = None
    ) -> list[StoredReading]:
        alert_index.check_recent_limit(limit)
        plan = codec.plan_query(ReadingQuery(name=name))
        with self._connection("recent_readings") as conn:
            device_id = self._device_id(conn, device)
            if device_id is None:
                return []
        where = ["device_id = ?"]
        params: list[Any] = [device_id]
        if plan.pattern is not None:
            where.append(self.NAME_MATCH_SQL)
            params.append(plan.pattern)
        out: list[StoredReading] = []
        for rows in self._scan("recent_readings", where, params, MAX_INDEX - 1, descending=True):
            for row in rows:
                found = [r for r in readings_from_row(row) if codec.plan_matches(plan, r)]
                out.extend(reversed(found))
            if len(out) >= limit:
                break
        out = out[:limit]
        out.reverse()
        return out

    def count_readings(self, device: str) -> int:
        with self._connection("count_readings") as conn:
            device_id = self._device_id(conn, device)
            if device_id is None:
                return 0
            row = self._execute(
                conn, "SELECT sum(count) FROM segments WHERE device_id = ?", (device_id,)
            ).fetchone()
        return 0 if row is None or row[0] is None else int(row[0])

    def index_mismatches(self, start: int, end: int) -> list[IndexMismatch]:
        # Segments that start in [start, end), the id rows of their readings (the last
        # one may reach past `end`) and the alerts in [start, end).
        columns = ", ".join(codec.SEGMENT_INDEX_COLUMNS)
        with self._snapshot("index_mismatches") as conn:
            rows = self._execute(
                conn,
                f"SELECT {SEGMENT_COLUMNS}, {columns} FROM segments"
                " WHERE first_idx >= ? AND first_idx < ? ORDER BY first_idx",
                (start, end),
            ).fetchall()
            before = self._execute(
                conn,
                "SELECT first_idx + count FROM segments WHERE first_idx < ?"
                " ORDER BY first_idx DESC LIMIT 1",
                (start,),
            ).fetchone()
            covered_from = max(start, int(before[0]) if before else start)
            stop = max([end, *(int(row[0]) + int(row[3]) for row in rows)])
            id_rows = self._execute(
                conn,
                "SELECT epoch, id_key, idx FROM reading_ids"
                " WHERE epoch >= ? AND epoch <= ? AND idx >= ? AND idx < ?",
                (start >> codec.ID_EPOCH_BITS, (stop - 1) >> codec.ID_EPOCH_BITS, start, stop),
            ).fetchall()
            for epoch, keys, offsets in self._execute(
                conn,
                "SELECT epoch, id_keys, offsets FROM id_chunks WHERE epoch >= ? AND epoch <= ?",
                (start >> codec.ID_EPOCH_BITS, (stop - 1) >> codec.ID_EPOCH_BITS),
            ).fetchall():
                id_rows += codec.chunk_entries(int(epoch), bytes(keys), bytes(offsets), start, stop)
            # recent_ids holds few rows (those of the epochs not yet complete).
            for first, keys in self._execute(
                conn, "SELECT first_idx, id_keys FROM recent_ids WHERE first_idx < ?", (stop,)
            ).fetchall():
                id_rows += codec.recent_id_entries(int(first), bytes(keys), start, stop)
            alert_rows = self._execute(
                conn,
                "SELECT idx, leaf, device, name, time, score FROM alerts"
                " WHERE idx >= ? AND idx < ? ORDER BY idx",
                (start, end),
            ).fetchall()
            device_ids = {
                str(did): int(row_id)
                for row_id, did in self._execute(conn, "SELECT id, did FROM devices")
            }
        id_keys: dict[int, set[tuple[int, int, int]]] = {}
        for epoch, key, index in id_rows:
            id_keys.setdefault(int(index), set()).add((int(epoch), int(key), int(index)))
        out: list[IndexMismatch] = []
        for row in rows:
            first, count = int(row[0]), int(row[3])
            # The columns are read from the messages in place (no reading is rebuilt);
            # a body or message that does not parse is the leaf audit's to report.
            try:
                messages = codec.decode_segment_body(bytes(row[2])).messages
                device = message_device(messages[0])
                head = device_prefix(device)
                if not all(message.startswith(head) for message in messages):
                    continue
                seqs, times, names = message_columns(first, messages, len(head))
            except (StoreError, InputError):
                continue
            expected = codec.index_values(
                len(messages), device_ids.get(device, -1), seqs, times, names
            )
            problems = codec.index_differences(row[3:], expected)
            want = set(codec.id_rows(first, [reading_id(m) for m in messages]))
            have = {
                entry
                for index in range(first, first + len(messages))
                for entry in id_keys.pop(index, ())
            }
            if want - have:
                problems.append(f"{len(want - have)} of its readings cannot be found by id")
            if have - want:
                problems.append(f"{len(have - want)} id entries point at its readings wrongly")
            if problems:
                out.append(
                    IndexMismatch(
                        first,
                        count,
                        f"segment of {device} at {first}..{first + count - 1}: "
                        + "; ".join(problems),
                    )
                )
        for index in sorted(i for i in id_keys if i >= covered_from):
            out.append(IndexMismatch(index, 1, f"an id entry points at index {index}, no reading"))
        for index, leaf, *stored in alert_rows:
            want_cols = list(alert_index.alert_row(int(index), bytes(leaf))[2:])
            if list(stored) != want_cols:
                out.append(
                    IndexMismatch(
                        int(index),
                        1,
                        f"alert at {index}: its indexed fields are {list(stored)},"
                        f" its leaf says {want_cols}",
                    )
                )
        out.sort(key=lambda m: m.index)
        return out

    def _convert_legacy_readings(self) -> None:
        """Moves every row of the legacy readings table into one-reading segments, a
        chunk per transaction, then drops the table. A conversion cut short resumes at
        the next open; reads see only segments."""
        with self._connection("convert readings") as conn:
            if self._execute(conn, self.LEGACY_READINGS_SQL).fetchone() is None:
                return
        while True:
            with self._write("convert readings", log=True) as conn:
                rows = self._execute(
                    conn,
                    f"SELECT {LEGACY_COLUMNS} FROM readings ORDER BY idx LIMIT ?",
                    (CONVERT_CHUNK,),
                ).fetchall()
                if not rows:
                    self._execute(conn, "DROP TABLE readings")
                    return
                converted = [legacy_segment(row) for row in rows]
                self._bulk_insert(
                    conn,
                    SEGMENTS,
                    [codec.segment_values(segment, device_id) for segment, device_id in converted],
                )
                self._bulk_insert(
                    conn, READING_IDS, [row for s, _ in converted for row in codec.id_values(s)]
                )
                self._execute(conn, "DELETE FROM readings WHERE idx <= ?", (rows[-1][0],))

    # -- alerts ---------------------------------------------------------------------

    def _index_old_alerts(self) -> None:
        """Fills the query fields of alert rows written before they existed."""
        with self._write("index alerts") as conn:
            rows = self._execute(
                conn, "SELECT idx, leaf FROM alerts WHERE device IS NULL"
            ).fetchall()
            updates = []
            for index, leaf in rows:
                cols = alert_index.alert_columns(bytes(leaf))
                if cols is not None:
                    updates.append((cols.device, cols.name, cols.time, cols.score, index))
            if updates:
                self._executemany(
                    conn,
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
        with self._connection("query_alerts") as conn:
            rows = self._execute(
                conn,
                f"SELECT idx, leaf FROM alerts WHERE {' AND '.join(where)} ORDER BY idx LIMIT ?",
                params,
            ).fetchall()
        items, cursor = page_of(rows, plan.limit)
        return Page([(int(index), bytes(leaf)) for index, leaf in items], cursor)

    def get_alert(self, index: int) -> bytes | None:
        if not 0 <= index < MAX_INDEX:
            return None
        with self._connection("get_alert") as conn:
            row = self._execute(conn, "SELECT leaf FROM alerts WHERE idx = ?", (index,)).fetchone()
        return None if row is None else bytes(row[0])

    # -- events and keys ------------------------------------------------------------

    def _insert_events(self, conn: ConnT, events: Iterable[SecurityEvent]) -> None:
        self._executemany(
            conn, EVENTS.insert, [(e.device, e.kind.value, e.time, e.seq, e.detail) for e in events]
        )

    def add_events(self, events: Sequence[SecurityEvent]) -> None:
        if events:
            with self._write("add_events") as conn:
                self._insert_events(conn, events)

    def list_events(self, device: str | None = None) -> list[SecurityEvent]:
        with self._connection("list_events") as conn:
            if device is None:
                rows = self._execute(
                    conn, f"SELECT {EVENT_COLUMNS} FROM events ORDER BY id"
                ).fetchall()
            else:
                rows = self._execute(
                    conn,
                    f"SELECT {EVENT_COLUMNS} FROM events WHERE device = ? ORDER BY id",
                    (device,),
                ).fetchall()
        return [event_from_row(row) for row in rows]

    def count_events(self, device: str) -> dict[SecurityEventKind, int]:
        with self._connection("count_events") as conn:
            rows = self._execute(
                conn, "SELECT kind, count(*) FROM events WHERE device = ? GROUP BY kind", (device,)
            ).fetchall()
        return {SecurityEventKind(kind): int(n) for kind, n in rows}

    def add_api_key(self, key: ApiKey) -> None:
        try:
            with self._write("add_api_key") as conn:
                self._execute(conn, API_KEYS.insert, (key.key_hash, key.name, key.created_at))
        except StoreError as exc:
            if self._is_duplicate(exc):
                raise ConflictError(
                    f"an API key with hash {key.key_hash.hex()} is stored"
                ) from None
            raise

    def find_api_key(self, key_hash: bytes) -> ApiKey | None:
        with self._connection("find_api_key") as conn:
            row = self._execute(
                conn,
                "SELECT name, key_hash, created_at FROM api_keys WHERE key_hash = ?",
                (key_hash,),
            ).fetchone()
        return None if row is None else ApiKey(row[0], bytes(row[1]), row[2])
