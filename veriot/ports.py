"""The ports: what the domain needs from the outside world, as Protocols.

Adapters live in `storage/`, `chain/`, `ingest/`; unit tests use the in-memory store.
Each port has one conformance suite (tests/conformance/) that runs against every adapter.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from veriot.core.types import (
    ApiKey,
    Checkpoint,
    Device,
    NodeId,
    Page,
    ReadingQuery,
    SecurityEvent,
    StoredReading,
)


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the Unix epoch."""
        ...


@dataclass(frozen=True, slots=True)
class AppendBatch:
    """Everything one sequencing step adds, written atomically by `LogStore.append`.

    Preconditions: `readings` carry log indices `start, start+1, ...` where `start` is the
    store's log size; `nodes` are the tree nodes (level 0 included) that became complete.
    `alerts` are (index, leaf_data) pairs for alert leaves, interleaved in the same index
    space as readings.
    """

    readings: Sequence[StoredReading] = ()
    nodes: Sequence[tuple[NodeId, bytes]] = ()
    events: Sequence[SecurityEvent] = ()
    alerts: Sequence[tuple[int, bytes]] = field(default=())


class DeviceStore(Protocol):
    def add_device(self, device: Device) -> None:
        """Raises DeviceExistsError when `device.did` is already registered."""
        ...

    def get_device(self, did: str) -> Device | None: ...

    def list_devices(self) -> list[Device]: ...

    def revoke_device(self, did: str, at: float) -> Device:
        """Marks the device revoked at `at` (idempotent: keeps the first time).
        Raises UnknownDeviceError."""
        ...

    def rotate_key(self, did: str, public_key: bytes) -> Device: ...


class LogStore(Protocol):
    def log_size(self) -> int:
        """Number of leaves stored (readings and alerts)."""
        ...

    def append(self, batch: AppendBatch) -> None:
        """Writes the batch atomically and durably, or raises StoreError and writes nothing."""
        ...

    def get_nodes(self, ids: Sequence[NodeId]) -> list[bytes]:
        """Hashes of the given nodes, in order. Raises MissingNodeError."""
        ...

    def leaf_data(self, start: int, end: int) -> list[tuple[int, bytes]]:
        """(index, leaf data) for leaves start <= index < end, in index order, rebuilt
        from the stored readings and alerts (used by audits)."""
        ...

    def add_checkpoint(self, checkpoint: Checkpoint) -> None: ...

    def latest_checkpoint(self) -> Checkpoint | None: ...

    def checkpoint_at(self, size: int) -> Checkpoint | None: ...

    def list_checkpoints(self) -> list[Checkpoint]: ...


class ReadingStore(Protocol):
    def get_reading(self, reading_id: str) -> StoredReading | None: ...

    def get_reading_at(self, index: int) -> StoredReading | None: ...

    def find_seq(self, device: str, seq: int) -> StoredReading | None: ...

    def last_seqs(self) -> dict[str, int]:
        """The highest accepted sequence number of every device that has readings."""
        ...

    def query_readings(self, query: ReadingQuery) -> Page[StoredReading]: ...

    def iter_readings(self) -> Iterator[StoredReading]:
        """Every stored reading in log index order (used by audits)."""
        ...


class EventStore(Protocol):
    def add_events(self, events: Sequence[SecurityEvent]) -> None: ...

    def list_events(self, device: str | None = None) -> list[SecurityEvent]: ...


class ApiKeyStore(Protocol):
    def add_api_key(self, key: ApiKey) -> None: ...

    def find_api_key(self, key_hash: bytes) -> ApiKey | None: ...


class Store(DeviceStore, LogStore, ReadingStore, EventStore, ApiKeyStore, Protocol):
    """The whole store port. Adapters: storage/memory, storage/sqlite, storage/postgres."""

    def close(self) -> None: ...
