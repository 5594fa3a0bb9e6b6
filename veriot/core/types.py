"""Value types that flow through veriot.

Data flows one way: device -> ingest -> identity check -> ledger -> storage. Every type
here is an immutable value; none of them knows how it is stored or sent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import Generic, TypeVar

T = TypeVar("T")

MAX_SEQ = 2**63 - 1
"""Sequence numbers are unsigned but kept below 2**63 so every store can hold them."""


@dataclass(frozen=True, slots=True)
class Record:
    """One resolved SenML record (RFC 8428): no base fields, absolute time.

    `time` is seconds since the Unix epoch; `unit` is a SenML unit ("" when none).
    """

    name: str
    value: float
    time: float
    unit: str = ""


@dataclass(frozen=True, slots=True)
class Reading:
    """What a device says: its records under its id and a per-device sequence number."""

    device: str
    seq: int
    records: tuple[Record, ...]


@dataclass(frozen=True, slots=True)
class BatchAuth:
    """A device's one signature over the Merkle root of a batch of its readings.

    The reading is leaf `index` of a batch of `size` readings; `path` is its RFC 9162
    inclusion path to `root`; `signature` is the device's Ed25519 signature over the
    batch message (see docs/wire-format.md).
    """

    root: bytes
    size: int
    index: int
    path: tuple[bytes, ...]
    signature: bytes


@dataclass(frozen=True, slots=True)
class SignedReading:
    """A reading with exactly one of: its own signature, or a batch authentication."""

    reading: Reading
    signature: bytes | None = None
    batch: BatchAuth | None = None


class DeviceStatus(StrEnum):
    ACTIVE = "active"
    REVOKED = "revoked"


@dataclass(frozen=True, slots=True)
class Device:
    """A registered device. `did` is the did:key of `public_key` (32-byte Ed25519)."""

    did: str
    public_key: bytes
    name: str
    type: str
    registered_at: float
    revoked_at: float | None = None
    metadata: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    @property
    def status(self) -> DeviceStatus:
        return DeviceStatus.ACTIVE if self.revoked_at is None else DeviceStatus.REVOKED

    def active_at(self, when: float) -> bool:
        """True when the device was registered and not yet revoked at `when`."""
        return self.registered_at <= when and (self.revoked_at is None or when < self.revoked_at)


class EntryKind(IntEnum):
    """The first byte of every log leaf: what kind of entry the leaf is."""

    READING = 1
    ALERT = 2


@dataclass(frozen=True, slots=True)
class NodeId:
    """A node of the Merkle tree: the root of the perfect subtree over leaves
    [index * 2**level, (index + 1) * 2**level). Level 0 nodes are leaf hashes."""

    level: int
    index: int


@dataclass(frozen=True, slots=True)
class StoredReading:
    """An accepted reading as the store keeps it.

    `id` is the hex SHA-256 of the reading's canonical message; `index` its log index;
    `leaf_hash` the RFC 9162 leaf hash the log committed to; `gap` is set when its
    sequence number skipped ahead of the device's last accepted one.
    """

    id: str
    index: int
    signed: SignedReading
    leaf_hash: bytes
    received_at: float
    gap: bool = False
    message: bytes | None = field(default=None, compare=False, repr=False)
    """The canonical message when the producer already has it (spares re-encoding)."""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A signed statement by the log: at `timestamp` its tree of `size` leaves had `root`.

    `log_id` names the log (hex SHA-256 of its public key); `signature` is the log key's
    Ed25519 signature over the checkpoint body (see docs/wire-format.md).
    """

    log_id: str
    size: int
    root: bytes
    timestamp: float
    signature: bytes


@dataclass(frozen=True, slots=True)
class InclusionProof:
    """RFC 9162 inclusion proof of leaf `index` in the tree of `size` leaves."""

    index: int
    size: int
    hashes: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class ConsistencyProof:
    """RFC 9162 consistency proof between trees of `first` and `second` leaves."""

    first: int
    second: int
    hashes: tuple[bytes, ...]


class SecurityEventKind(StrEnum):
    BAD_SIGNATURE = "bad_signature"
    WRONG_KEY = "wrong_key"
    REPLAY = "replay"
    EQUIVOCATION = "equivocation"
    SEQUENCE_GAP = "sequence_gap"
    UNKNOWN_DEVICE = "unknown_device"
    REVOKED_DEVICE = "revoked_device"
    CLOCK_SKEW = "clock_skew"
    IMPOSSIBLE_VALUE = "impossible_value"


@dataclass(frozen=True, slots=True)
class SecurityEvent:
    """Something a device (or someone claiming to be it) did that bears on trust."""

    device: str
    kind: SecurityEventKind
    time: float
    seq: int | None = None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class ReadingQuery:
    """Filters for listing readings; `cursor` is opaque (from a previous Page)."""

    device: str | None = None
    name: str | None = None
    since: float | None = None
    until: float | None = None
    limit: int = 100
    cursor: str | None = None


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class ApiKey:
    """An operator API key as stored: only its SHA-256 hash, never the key."""

    name: str
    key_hash: bytes
    created_at: float
