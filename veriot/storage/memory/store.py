"""An in-memory Store for unit tests: the same behaviour as the SQL stores, no durability."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace

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
    StoredReading,
)
from veriot.ledger.segment import segment_readings
from veriot.ports import AlertQuery, AppendBatch
from veriot.storage import alerts as alert_index
from veriot.storage import codec, tiles

_ITER_CHUNK = 1000


class MemoryStore:
    """A Store held in dictionaries behind one lock. Safe to share between threads."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._closed = False
        self._devices: dict[str, Device] = {}
        self._readings: dict[int, StoredReading] = {}
        self._alerts: dict[int, bytes] = {}
        self._alert_columns: dict[int, alert_index.AlertColumns] = {}
        self._size = 0
        self._by_id: dict[str, int] = {}
        self._by_seq: dict[tuple[str, int], int] = {}
        self._last_seq: dict[str, int] = {}
        self._levels: dict[int, list[bytes]] = {}
        self._events: list[SecurityEvent] = []
        self._keys: dict[bytes, ApiKey] = {}
        self._checkpoints: list[Checkpoint] = []

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("the store is closed")

    # -- devices --------------------------------------------------------------------

    def add_device(self, device: Device) -> None:
        with self._lock:
            self._check_open()
            if device.did in self._devices:
                raise DeviceExistsError(device.did)
            self._devices[device.did] = replace(device, metadata=dict(device.metadata))

    def get_device(self, did: str) -> Device | None:
        with self._lock:
            self._check_open()
            return self._devices.get(did)

    def list_devices(self) -> list[Device]:
        with self._lock:
            self._check_open()
            return sorted(self._devices.values(), key=lambda d: (d.registered_at, d.did))

    def revoke_device(self, did: str, at: float) -> Device:
        with self._lock:
            self._check_open()
            device = self._devices.get(did)
            if device is None:
                raise UnknownDeviceError(did)
            if device.revoked_at is None:
                device = self._devices[did] = replace(device, revoked_at=at)
            return device

    def rotate_key(self, did: str, public_key: bytes) -> Device:
        with self._lock:
            self._check_open()
            device = self._devices.get(did)
            if device is None:
                raise UnknownDeviceError(did)
            device = self._devices[did] = replace(device, public_key=public_key)
            return device

    # -- the log --------------------------------------------------------------------

    def log_size(self) -> int:
        with self._lock:
            self._check_open()
            return self._size

    def append(self, batch: AppendBatch) -> None:
        with self._lock:
            self._check_open()
            readings, levels = self._validate(batch)
            for stored in readings:
                reading = stored.signed.reading
                self._readings[stored.index] = stored
                self._by_id[stored.id] = stored.index
                self._by_seq[(reading.device, reading.seq)] = stored.index
                last = self._last_seq.get(reading.device)
                if last is None or reading.seq > last:
                    self._last_seq[reading.device] = reading.seq
            for index, leaf in batch.alerts:
                self._alerts[index] = bytes(leaf)
                cols = alert_index.alert_columns(leaf)
                if cols is not None:
                    self._alert_columns[index] = cols
            for level, (_, hashes) in levels.items():
                self._levels.setdefault(level, []).extend(hashes)
            self._events.extend(batch.events)
            self._size += len(readings) + len(batch.alerts)

    def _validate(self, batch: AppendBatch) -> tuple[list[StoredReading], dict[int, tiles.NodeRun]]:
        """Every check the SQL stores make, before anything is written; returns the
        batch's readings (its segments' included, with their messages) and its nodes by
        level."""
        readings = list(batch.readings)
        for segment in batch.segments:
            try:
                readings.extend(segment_readings(segment, columns=not batch.columns_derived))
            except InputError as exc:
                raise StoreError(f"append wrote nothing: {exc}") from exc
        indices = [r.index for r in readings] + [i for i, _ in batch.alerts]
        codec.check_batch_indices(self._size, indices)
        pairs = [(r.signed.reading.device, r.signed.reading.seq) for r in readings]
        codec.check_batch_seqs(pairs)
        for stored, (device, seq) in zip(readings, pairs, strict=True):
            if device not in self._devices:
                raise StoreError(f"reading {stored.index} is from unregistered device {device}")
            existing = self._by_seq.get((device, seq))
            if existing is not None:
                raise StoreError(
                    f"device {device} already has sequence number {seq} (index {existing})"
                )
            try:
                codec.reading_values(stored, 0)
            except InputError as exc:
                raise StoreError(f"reading {stored.index} cannot be stored: {exc}") from exc
        try:
            levels = tiles.group_by_level(batch.nodes)
        except InputError as exc:
            raise StoreError(f"append wrote nothing: {exc}") from exc
        for level, run in levels.items():
            tiles.check_run(level, len(self._levels.get(level, ())), run)
        return readings, levels

    def get_nodes(self, ids: Sequence[NodeId]) -> list[bytes]:
        with self._lock:
            self._check_open()
            out = []
            for node in ids:
                level = self._levels.get(node.level, [])
                if not 0 <= node.index < len(level):
                    raise MissingNodeError(node.level, node.index)
                out.append(level[node.index])
            return out

    def leaf_data(self, start: int, end: int) -> list[tuple[int, bytes]]:
        with self._lock:
            self._check_open()
            out = []
            for index in range(max(start, 0), min(end, self._size)):
                alert = self._alerts.get(index)
                if alert is not None:
                    out.append((index, alert))
                else:
                    out.append((index, codec.reading_leaf_data(self._readings[index])))
            return out

    def list_alert_leaves(self, start: int, end: int) -> list[tuple[int, bytes]]:
        """(index, leaf data) of the alert leaves with start <= index < end, in order."""
        with self._lock:
            self._check_open()
            return sorted((i, leaf) for i, leaf in self._alerts.items() if start <= i < end)

    def add_checkpoint(self, checkpoint: Checkpoint) -> None:
        with self._lock:
            self._check_open()
            same = self._checkpoint_at(checkpoint.size)
            if same is not None and same.root != checkpoint.root:
                raise StoreError(
                    f"checkpoint of size {checkpoint.size} has root {checkpoint.root.hex()}; "
                    f"a stored one has {same.root.hex()}"
                )
            self._checkpoints.append(checkpoint)

    def latest_checkpoint(self) -> Checkpoint | None:
        with self._lock:
            self._check_open()
            return self._checkpoints[-1] if self._checkpoints else None

    def checkpoint_at(self, size: int) -> Checkpoint | None:
        with self._lock:
            self._check_open()
            return self._checkpoint_at(size)

    def _checkpoint_at(self, size: int) -> Checkpoint | None:
        for checkpoint in reversed(self._checkpoints):
            if checkpoint.size == size:
                return checkpoint
        return None

    def list_checkpoints(self) -> list[Checkpoint]:
        with self._lock:
            self._check_open()
            return list(self._checkpoints)

    # -- readings -------------------------------------------------------------------

    def get_reading(self, reading_id: str) -> StoredReading | None:
        with self._lock:
            self._check_open()
            index = self._by_id.get(reading_id)
            return None if index is None else self._readings[index]

    def get_reading_at(self, index: int) -> StoredReading | None:
        with self._lock:
            self._check_open()
            return self._readings.get(index)

    def find_seqs(self, device: str, seqs: Iterable[int]) -> dict[int, StoredReading]:
        with self._lock:
            self._check_open()
            found = {}
            for seq in seqs:
                index = self._by_seq.get((device, seq))
                if index is not None:
                    found[seq] = self._readings[index]
            return found

    def last_seqs(self) -> dict[str, int]:
        with self._lock:
            self._check_open()
            return dict(self._last_seq)

    def query_readings(self, query: ReadingQuery) -> Page[StoredReading]:
        plan = codec.plan_query(query)
        name = query.name
        with self._lock:
            self._check_open()
            items: list[StoredReading] = []
            for index in range(plan.after + 1, self._size):
                stored = self._readings.get(index)
                if stored is None:
                    continue
                reading = stored.signed.reading
                first = reading.records[0].time
                if (
                    (plan.device is not None and reading.device != plan.device)
                    or (name is not None and all(r.name != name for r in reading.records))
                    or (plan.since is not None and first < plan.since)
                    or (plan.until is not None and first >= plan.until)
                ):
                    continue
                if len(items) == plan.limit:
                    return Page(items, codec.encode_cursor(items[-1].index))
                items.append(stored)
            return Page(items, None)

    def index_mismatches(self, start: int, end: int) -> list[IndexMismatch]:
        # This store's indexes are its maps by id, by (device, seq) and of alert fields.
        out: list[IndexMismatch] = []
        with self._lock:
            self._check_open()
            for index in range(max(start, 0), min(end, self._size)):
                stored = self._readings.get(index)
                if stored is not None:
                    reading = stored.signed.reading
                    key = (reading.device, reading.seq)
                    if self._by_id.get(stored.id) != index or self._by_seq.get(key) != index:
                        out.append(
                            IndexMismatch(
                                index, 1, f"reading at {index} is not found by its id or seq"
                            )
                        )
                leaf = self._alerts.get(index)
                if leaf is not None and self._alert_columns.get(index) != alert_index.alert_columns(
                    leaf
                ):
                    out.append(IndexMismatch(index, 1, f"alert at {index}: fields differ"))
        return out

    def iter_readings(self) -> Iterator[StoredReading]:
        with self._lock:
            self._check_open()
            end = self._size
        start = 0
        while start < end:
            with self._lock:
                self._check_open()
                chunk = [
                    self._readings[i]
                    for i in range(start, min(start + _ITER_CHUNK, end))
                    if i in self._readings
                ]
            yield from chunk
            start += _ITER_CHUNK

    def recent_readings(
        self, device: str, limit: int, name: str | None = None
    ) -> list[StoredReading]:
        alert_index.check_recent_limit(limit)
        codec.plan_query(ReadingQuery(name=name))  # validates the name
        with self._lock:
            self._check_open()
            out: list[StoredReading] = []
            for index in range(self._size - 1, -1, -1):
                stored = self._readings.get(index)
                if stored is None or stored.signed.reading.device != device:
                    continue
                if name is not None and all(r.name != name for r in stored.signed.reading.records):
                    continue
                out.append(stored)
                if len(out) == limit:
                    break
            out.reverse()
            return out

    def count_readings(self, device: str) -> int:
        with self._lock:
            self._check_open()
            return sum(1 for r in self._readings.values() if r.signed.reading.device == device)

    # -- alerts ---------------------------------------------------------------------

    def query_alerts(self, query: AlertQuery) -> Page[tuple[int, bytes]]:
        plan = alert_index.plan_alert_query(query)
        with self._lock:
            self._check_open()
            items: list[tuple[int, bytes]] = []
            for index in sorted(i for i in self._alert_columns if i > plan.after):
                if not plan.matches(self._alert_columns[index]):
                    continue
                if len(items) == plan.limit:
                    return Page(items, codec.encode_cursor(items[-1][0]))
                items.append((index, self._alerts[index]))
            return Page(items, None)

    def get_alert(self, index: int) -> bytes | None:
        with self._lock:
            self._check_open()
            return self._alerts.get(index)

    # -- events and keys ------------------------------------------------------------

    def add_events(self, events: Sequence[SecurityEvent]) -> None:
        with self._lock:
            self._check_open()
            self._events.extend(events)

    def list_events(self, device: str | None = None) -> list[SecurityEvent]:
        with self._lock:
            self._check_open()
            return [e for e in self._events if device is None or e.device == device]

    def count_events(self, device: str) -> dict[SecurityEventKind, int]:
        with self._lock:
            self._check_open()
            counts: dict[SecurityEventKind, int] = {}
            for e in self._events:
                if e.device == device:
                    counts[e.kind] = counts.get(e.kind, 0) + 1
            return counts

    def add_api_key(self, key: ApiKey) -> None:
        with self._lock:
            self._check_open()
            if key.key_hash in self._keys:
                raise ConflictError(f"an API key with hash {key.key_hash.hex()} is stored")
            self._keys[key.key_hash] = key

    def find_api_key(self, key_hash: bytes) -> ApiKey | None:
        with self._lock:
            self._check_open()
            return self._keys.get(key_hash)

    def close(self) -> None:
        with self._lock:
            self._closed = True
