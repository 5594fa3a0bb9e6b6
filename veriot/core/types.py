"""Value types that flow through veriot.

Data flows one way: device -> ingest -> identity check -> ledger -> storage. Every type
here is an immutable value; none of them knows how it is stored or sent.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from enum import IntEnum, StrEnum
from typing import Annotated, Any, Generic, TypeVar, overload

import msgspec

T = TypeVar("T")

MAX_SEQ = 2**63 - 1
"""Sequence numbers are unsigned but kept below 2**63 so every store can hold them."""

MAX_NAME_BYTES = 64
MAX_UNIT_BYTES = 16
"""The longest record name and unit a reading message holds (veriot.core.canonical)."""


class Record(
    msgspec.Struct,
    frozen=True,
    gc=False,
    rename={"name": "n", "value": "v", "time": "t", "unit": "u"},
    forbid_unknown_fields=True,
    omit_defaults=True,
):
    """One resolved SenML record (RFC 8428): no base fields, absolute time.

    `time` is seconds since the Unix epoch; `unit` is a SenML unit ("" when none).
    (Record and Reading are frozen msgspec Structs rather than dataclasses: ingest builds
    and decodes several per reading, which a Struct does several times faster, and
    values that hold no cycles need no tracking by the garbage collector.)

    msgspec encodes and decodes a Record as the wire format's record object: its SenML
    labels (`n`, `v`, `t`, `u`, without `u` when empty) and their bounds, so a request
    decodes straight into Records (veriot.core.wire checks the rest: names and units).
    """

    name: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_NAME_BYTES)]
    value: float
    time: Annotated[float, msgspec.Meta(ge=0)]
    unit: Annotated[str, msgspec.Meta(max_length=MAX_UNIT_BYTES)] = ""


class Reading(msgspec.Struct, frozen=True, gc=False):
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


class SequenceView(Sequence[T]):
    """A Sequence kept in another shape (columns, runs) than its items: equal to any
    sequence of the same items, as a list is, and shown as that list."""

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence):
            return list(self) == list(other)
        return NotImplemented

    def __repr__(self) -> str:
        return f"{type(self).__name__}({list(self)!r})"


class NodeRuns(SequenceView[tuple[NodeId, bytes]]):
    """Tree nodes as one run per level: `levels[level] = (first, hashes)` holds the hashes
    of nodes (level, first), (level, first + 1), ... An append to an append-only tree
    completes exactly such a run on each level it reaches, so the log hands its new nodes
    over in this form, without an object per node. As a Sequence it is the
    (NodeId, hash) pairs, level by level (children before parents), each level in index
    order. Precondition: `levels` is not changed once given."""

    __slots__ = ("_count", "levels")

    def __init__(self, levels: Mapping[int, tuple[int, Sequence[bytes]]]) -> None:
        self.levels = levels
        self._count = sum(len(hashes) for _, hashes in levels.values())

    def __len__(self) -> int:
        return self._count

    @overload
    def __getitem__(self, i: int) -> tuple[NodeId, bytes]: ...

    @overload
    def __getitem__(self, i: slice) -> list[tuple[NodeId, bytes]]: ...

    def __getitem__(self, i: int | slice) -> tuple[NodeId, bytes] | list[tuple[NodeId, bytes]]:
        pairs = list(self)
        return pairs[i]

    def __iter__(self) -> Iterator[tuple[NodeId, bytes]]:
        for level in sorted(self.levels):
            first, hashes = self.levels[level]
            for index, value in enumerate(hashes, first):
                yield NodeId(level, index), value


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
class BatchSeal:
    """What every stored member of one compact batch shares: the device's one signature
    over the batch root, and the leaf hashes of all `size` members' canonical messages in
    batch order (so each member's inclusion path to `root` can be derived again)."""

    root: bytes
    signature: bytes
    leaves: tuple[bytes, ...]

    @property
    def size(self) -> int:
        return len(self.leaves)


def reading_columns(
    readings: Sequence[Reading],
) -> tuple[tuple[int, ...], tuple[float, ...], tuple[str, ...]]:
    """The `seqs`, `times` and `names` columns of a Segment of `readings` (each reading
    has at least one record)."""
    return (
        tuple([r.seq for r in readings]),
        tuple([r.records[0].time for r in readings]),
        tuple(sorted({rec.name for r in readings for rec in r.records})),
    )


@dataclass(frozen=True, slots=True)
class Segment:
    """Accepted readings of one device at consecutive log indices, committed together.

    Reading i sits at log index `first_index + i`; `messages[i]` is its canonical message,
    `ids[i]` the hex SHA-256 of that message and `leaf_hashes[i]` the log leaf hash.
    `seqs[i]` is its sequence number and `times[i]` the time of its first record; `names`
    are the record names of all the readings, sorted, each once. (`readings` holds the
    same readings decoded; the service receives them packed, see veriot.core.packed, and
    nothing on its ingest path reads them: the columns are what the store needs.) How
    the readings were signed is exactly one of:

    - `signatures`: each reading's own signature (one per reading);
    - `batch_auths`: each reading's batch authentication as it arrived (one per reading);
    - `seal` with `positions`: the readings are members `positions[i]` of one compact
      batch (see BatchSeal); their paths are derived from `seal.leaves`.

    A segment holds every field a stored reading is rebuilt from; the columnar layout lets
    the sequencer and the stores handle a batch of readings without an object per reading.
    On the ingest path `messages`, `ids`, `leaf_hashes` and `signatures` are blobs with a
    Sequence view (see veriot.core.columns).
    """

    device: str
    first_index: int
    received_at: float
    readings: Sequence[Reading]
    messages: Sequence[bytes]
    ids: Sequence[str]
    leaf_hashes: Sequence[bytes]
    gaps: tuple[bool, ...]
    seqs: tuple[int, ...]
    times: tuple[float, ...]
    names: tuple[str, ...]
    signatures: Sequence[bytes] = ()
    batch_auths: tuple[BatchAuth, ...] = ()
    seal: BatchSeal | None = None
    positions: tuple[int, ...] = ()

    def __len__(self) -> int:
        return len(self.messages)

    @property
    def end_index(self) -> int:
        """One past the log index of the last reading."""
        return self.first_index + len(self.messages)


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
class IndexMismatch:
    """Stored leaves whose index entries (what finds them by device and sequence number,
    time, record name or id, or an alert by its fields) disagree with what the leaves
    hold: `count` leaves from log index `index`, and how they disagree."""

    index: int
    count: int
    detail: str


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


# --- building values cheaply on the ingest path ------------------------------------------
# A frozen dataclass __init__ sets each field through object.__setattr__ (about 0.2 µs a
# field), and ingest builds several of these per reading. The builders below write the
# slots through their descriptors instead, with no checks beyond __init__'s (it has none).
# The setters are taken from dataclasses.fields, so a field added to one of these types
# without updating its builder fails at import, not with a half-built object.


def _setters(cls: type, names: tuple[str, ...]) -> tuple[Any, ...]:
    declared = tuple(f.name for f in fields(cls))
    if declared != names:
        raise TypeError(f"{cls.__name__} has fields {declared}; types.py builds {names}")
    return tuple(cls.__dict__[name].__set__ for name in names)


_new = object.__new__
_sr_reading, _sr_signature, _sr_batch = _setters(SignedReading, ("reading", "signature", "batch"))
_ba_root, _ba_size, _ba_index, _ba_path, _ba_signature = _setters(
    BatchAuth, ("root", "size", "index", "path", "signature")
)
_st_id, _st_index, _st_signed, _st_leaf_hash, _st_received_at, _st_gap, _st_message = _setters(
    StoredReading, ("id", "index", "signed", "leaf_hash", "received_at", "gap", "message")
)


def build_signed(
    reading: Reading, signature: bytes | None, batch: BatchAuth | None
) -> SignedReading:
    """SignedReading(reading, signature, batch), built faster."""
    s: SignedReading = _new(SignedReading)
    _sr_reading(s, reading)
    _sr_signature(s, signature)
    _sr_batch(s, batch)
    return s


def build_batch_auth(
    root: bytes, size: int, index: int, path: tuple[bytes, ...], signature: bytes
) -> BatchAuth:
    """BatchAuth(root, size, index, path, signature), built faster."""
    b: BatchAuth = _new(BatchAuth)
    _ba_root(b, root)
    _ba_size(b, size)
    _ba_index(b, index)
    _ba_path(b, path)
    _ba_signature(b, signature)
    return b


def build_stored(
    id: str,
    index: int,
    signed: SignedReading,
    leaf_hash: bytes,
    received_at: float,
    gap: bool,
    message: bytes | None,
) -> StoredReading:
    """StoredReading(id, index, signed, leaf_hash, received_at, gap, message), built faster."""
    s: StoredReading = _new(StoredReading)
    _st_id(s, id)
    _st_index(s, index)
    _st_signed(s, signed)
    _st_leaf_hash(s, leaf_hash)
    _st_received_at(s, received_at)
    _st_gap(s, gap)
    _st_message(s, message)
    return s
