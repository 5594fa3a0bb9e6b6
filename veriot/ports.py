"""The ports: what the domain needs from the outside world, as Protocols.

Adapters live in `storage/`, `chain/`, `ingest/`; unit tests use the in-memory store.
Each port has one conformance suite (tests/conformance/) that runs against every adapter.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

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


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the Unix epoch."""
        ...


@dataclass(frozen=True, slots=True)
class AppendBatch:
    """Everything one sequencing step adds, written atomically by `LogStore.append`.

    Preconditions: `readings`, `segments` and `alerts` together carry log indices
    `start, start+1, ...` (each exactly once, in any order) where `start` is the store's
    log size; `nodes` are the tree nodes (level 0 included) that became complete.
    `alerts` are (index, leaf_data) pairs for alert leaves, interleaved in the same index
    space as readings.

    The stores refuse an inconsistent segment (ledger.segment.check_segment), its columns
    included: they read every message again to compare its seq, time and record names
    with the `seqs`, `times` and `names` they index. `columns_derived` says the producer
    derived those columns from the same readings as the messages (the sequencer does,
    from checked readings), and the stores then check the rest only, as they take a
    segment's ids and leaf hashes as given: reading the messages again took a sixth of
    the writer thread's instructions in per-batch ingest.
    """

    readings: Sequence[StoredReading] = ()
    nodes: Sequence[tuple[NodeId, bytes]] = ()
    events: Sequence[SecurityEvent] = ()
    alerts: Sequence[tuple[int, bytes]] = field(default=())
    segments: Sequence[Segment] = field(default=())
    columns_derived: bool = False


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

    def find_seqs(self, device: str, seqs: Iterable[int]) -> dict[int, StoredReading]:
        """The stored readings of `device` with any of `seqs`, by seq (seqs not stored
        left out): the sequencer's one lookup for a submission of late readings."""
        ...

    def last_seqs(self) -> dict[str, int]:
        """The highest accepted sequence number of every device that has readings."""
        ...

    def query_readings(self, query: ReadingQuery) -> Page[StoredReading]: ...

    def iter_readings(self) -> Iterator[StoredReading]:
        """Every stored reading in log index order (used by audits)."""
        ...

    def index_mismatches(self, start: int, end: int) -> list[IndexMismatch]:
        """Where what finds the stored leaves (by device and sequence number, time,
        record name, id; alerts by their fields) disagrees with what they hold, for the
        readings stored together from an index in [start, end) and the alerts in it, in
        index order (used by audits: a lowered seq range would let a replay in after a
        restart, a wrong time or name hide readings from queries)."""
        ...

    def recent_readings(
        self, device: str, limit: int, name: str | None = None
    ) -> list[StoredReading]:
        """The last `limit` readings of `device` (those with a record named `name` when
        given), in log index order. Requires limit >= 1; raises InputError for an invalid
        name. Serves forecasts and machine health."""
        ...

    def count_readings(self, device: str) -> int:
        """How many readings of `device` the log holds."""
        ...


class EventStore(Protocol):
    def add_events(self, events: Sequence[SecurityEvent]) -> None: ...

    def list_events(self, device: str | None = None) -> list[SecurityEvent]: ...

    def count_events(self, device: str) -> dict[SecurityEventKind, int]:
        """The number of security events of `device` by kind (kinds with none left out)."""
        ...


@dataclass(frozen=True, slots=True)
class AlertQuery:
    """Filters for listing alerts: `since <= alert time < until`, score >= `min_score`;
    `cursor` is opaque (from a previous Page)."""

    device: str | None = None
    name: str | None = None
    since: float | None = None
    until: float | None = None
    min_score: float | None = None
    limit: int = 100
    cursor: str | None = None


class AlertStore(Protocol):
    """Alert leaves (`veriot.ai.alerts.alert_leaf`) as the log holds them, searchable by the
    fields the store reads from each leaf when it is appended. A leaf that does not parse
    as an alert is kept in the log but never listed."""

    def query_alerts(self, query: AlertQuery) -> Page[tuple[int, bytes]]:
        """(log index, leaf data) of the matching alerts in index order. Raises InputError
        for a limit outside 1..1000 or a cursor the store did not issue."""
        ...

    def get_alert(self, index: int) -> bytes | None:
        """The data of the alert leaf at log index `index`, or None when the log holds no
        alert leaf there (a reading, or past the end)."""
        ...


class ApiKeyStore(Protocol):
    def add_api_key(self, key: ApiKey) -> None: ...

    def find_api_key(self, key_hash: bytes) -> ApiKey | None: ...


class Store(DeviceStore, LogStore, ReadingStore, EventStore, ApiKeyStore, AlertStore, Protocol):
    """The whole store port. Adapters: storage/memory, storage/sqlite, storage/postgres."""

    def close(self) -> None: ...


# --- Chain ---------------------------------------------------------------------------------
# The EVM chain is the source of truth for which devices may write and the public witness of
# the log. Adapters: veriot/chain/web3_client.py (any JSON-RPC node) and
# veriot/chain/embedded.py (an in-process chain journaled in the data directory).


@dataclass(frozen=True, slots=True)
class TxReceipt:
    """A mined transaction: its 0x-hex hash, block number, block timestamp and gas used."""

    tx_hash: str
    block: int
    timestamp: int
    gas_used: int


@dataclass(frozen=True, slots=True)
class Anchor:
    """A checkpoint of log `log_id` anchored on chain `chain_id` by contract `contract`:
    at `size` leaves the log's root was `root`; `timestamp` is the checkpoint's time
    (seconds, millisecond precision) and `block` the block that holds transaction `tx_hash`."""

    chain_id: int
    contract: str
    tx_hash: str
    block: int
    size: int
    root: bytes
    timestamp: float
    log_id: str = ""


@dataclass(frozen=True, slots=True)
class ChainDevice:
    """A device as the registry contract records it; times are block timestamps.

    `public_key` is the key in force at the time asked for (see ChainClient.device_at);
    `key_since` when it took effect."""

    did: str
    public_key: bytes
    device_type: str
    metadata_hash: bytes
    registered_at: float
    key_since: float
    revoked_at: float | None = None

    def active_at(self, when: float) -> bool:
        return self.registered_at <= when and (self.revoked_at is None or when < self.revoked_at)


DEVICE_REGISTERED = "registered"
KEY_ROTATED = "key_rotated"
DEVICE_REVOKED = "revoked"


@dataclass(frozen=True, slots=True)
class DeviceEvent:
    """One registry event. `kind` is DEVICE_REGISTERED, KEY_ROTATED or DEVICE_REVOKED;
    `public_key` is the new key (empty for a revocation); `time` the block timestamp."""

    kind: str
    did: str
    public_key: bytes
    device_type: str
    metadata_hash: bytes
    time: float
    block: int
    tx_hash: str
    log_index: int


class ChainClient(Protocol):
    """An EVM chain holding a DeviceRegistry and a LogAnchor contract.

    Every method raises veriot.core.errors.ChainError (subclasses in veriot.chain.errors)
    when the node fails or refuses; write methods block until the transaction is mined.
    """

    @property
    def registry_address(self) -> str: ...

    @property
    def anchor_address(self) -> str: ...

    def chain_id(self) -> int: ...

    def block_number(self) -> int: ...

    def register_device(
        self, did: str, public_key: bytes, device_type: str, metadata_hash: bytes
    ) -> TxReceipt:
        """Requires a 32-byte key and 32-byte metadata hash. Reverts (ChainError) when the
        did is already registered."""
        ...

    def rotate_key(self, did: str, public_key: bytes) -> TxReceipt: ...

    def revoke_device(self, did: str) -> TxReceipt: ...

    def get_device(self, did: str) -> ChainDevice | None:
        """The device's current record, or None when it was never registered."""
        ...

    def device_at(self, did: str, when: float) -> ChainDevice | None:
        """The device's record with the key in force at `when` (from the registry's events),
        or None when it was never registered."""
        ...

    def device_events(self, from_block: int, to_block: int | None = None) -> list[DeviceEvent]:
        """Registry events in blocks from_block..to_block (inclusive; None = latest), in
        chain order."""
        ...

    def anchor(self, log_id: str, size: int, root: bytes, timestamp: float) -> Anchor:
        """Anchors a checkpoint. Requires size greater than the latest anchored size of
        the log (the contract reverts otherwise) and a 32-byte root."""
        ...

    def latest_anchor(self, log_id: str) -> Anchor | None: ...

    def anchor_at(self, log_id: str, size: int) -> Anchor | None: ...

    def list_anchors(self, log_id: str, from_block: int = 0) -> list[Anchor]:
        """Every anchor of the log from its contract's events, oldest first."""
        ...

    def close(self) -> None: ...
