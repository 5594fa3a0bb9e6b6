"""How the SQL stores lay out values in rows: shared by the SQLite and PostgreSQL adapters.

A reading is kept as its canonical message (`canonical.reading_message`) plus an `auth`
blob, so that it is rebuilt bit for bit:

    auth = u8(1) signature                                            (own signature)
         | u8(2) root[32] u32(size) u32(index) u16(n) n * hash[32] signature   (batch)

Beside them sit the columns that queries use: device, seq, log index, received_at, the
time of the first record and the record names as one space-delimited string
(" temp hum "), which a name filter matches with a substring search. SenML names cannot
contain a space, so " name " never matches across two names; one string per reading keeps
the insert path to a single row.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from collections.abc import Sequence
from dataclasses import dataclass

from veriot.core.canonical import (
    HASH_BYTES,
    NAME_PATTERN,
    parse_reading_message,
    reading_leaf,
    reading_message,
)
from veriot.core.errors import InputError, StoreError
from veriot.core.types import (
    BatchAuth,
    ReadingQuery,
    SignedReading,
    StoredReading,
)

AUTH_SIGNATURE = 1
AUTH_BATCH = 2

ID_EPOCH_BITS = 14
"""The reading-id index is keyed by (log index >> 14, id key); see the first migration."""

MAX_PAGE = 1000
"""The largest `ReadingQuery.limit` a store serves."""

_BATCH_HEAD = struct.Struct(">32sIIH")
_CURSOR = struct.Struct(">Q")
_VALUE_TIME = struct.Struct(">dd")


def encode_auth(signed: SignedReading) -> bytes:
    """The auth blob of a signed reading. Raises InputError unless exactly one of
    `signature` and `batch` is set and the batch's hashes are 32 bytes."""
    batch = signed.batch
    if (batch is None) == (signed.signature is None):
        raise InputError("a signed reading needs exactly one of a signature and a batch")
    if batch is None:
        assert signed.signature is not None
        return bytes((AUTH_SIGNATURE,)) + signed.signature
    path = b"".join(batch.path)  # its length checks every hash at once
    if len(batch.root) != HASH_BYTES or len(path) != HASH_BYTES * len(batch.path):
        raise InputError(f"batch root and path hashes must be {HASH_BYTES} bytes")
    head = _BATCH_HEAD.pack(batch.root, batch.size, batch.index, len(batch.path))
    return bytes((AUTH_BATCH,)) + head + path + batch.signature


def decode_auth(auth: bytes) -> tuple[bytes | None, BatchAuth | None]:
    """Inverse of encode_auth: (signature, batch). Raises StoreError for a corrupt blob."""
    if auth[:1] == bytes((AUTH_SIGNATURE,)):
        return auth[1:], None
    if auth[:1] == bytes((AUTH_BATCH,)) and len(auth) >= 1 + _BATCH_HEAD.size:
        root, size, index, n = _BATCH_HEAD.unpack_from(auth, 1)
        start = 1 + _BATCH_HEAD.size
        end = start + n * HASH_BYTES
        if len(auth) >= end:
            path = tuple(auth[i : i + HASH_BYTES] for i in range(start, end, HASH_BYTES))
            return None, BatchAuth(root, size, index, path, auth[end:])
    raise StoreError(f"stored auth blob is corrupt (kind byte {auth[:1].hex() or 'missing'})")


def id_key(reading_id: str) -> int:
    """A signed 64-bit key from the first 8 bytes of a reading id, for a compact index.
    Rows found by it are confirmed by rehashing their message. Raises ValueError for
    non-hex input."""
    return int(reading_id[:16], 16) - (1 << 63)


def is_reading_id(value: str) -> bool:
    """True for a lowercase hex SHA-256, the only form reading ids take."""
    return len(value) == 64 and all(c in "0123456789abcdef" for c in value)


ReadingValues = tuple[int, int, int, int, bytes, bytes, bytes, float, float, str, bool]
"""A readings row: idx, id_key, device_id, seq, message, auth, leaf_hash, received_at,
first_time, names, gap."""


def reading_values(stored: StoredReading, device_id: int) -> ReadingValues:
    """The readings row of a stored reading of the device with row id `device_id`.
    Precondition: `stored.id` is the reading id of its message. Raises InputError for a
    reading that has no canonical encoding."""
    reading = stored.signed.reading
    records = reading.records
    return (
        stored.index,
        id_key(stored.id),
        device_id,
        reading.seq,
        stored.message or reading_message(reading),
        encode_auth(stored.signed),
        stored.leaf_hash,
        stored.received_at,
        records[0].time,
        " " + " ".join([r.name for r in records]) + " ",
        stored.gap,
    )


def rebuild_reading(
    index: int, message: bytes, auth: bytes, leaf_hash: bytes, received_at: float, gap: bool
) -> StoredReading:
    """The StoredReading a row holds. Raises StoreError when the row is corrupt."""
    try:
        reading = parse_reading_message(message)
    except InputError as exc:
        raise StoreError(f"stored reading at index {index} is corrupt: {exc}") from exc
    signature, batch = decode_auth(auth)
    return StoredReading(
        id=hashlib.sha256(message).hexdigest(),
        index=index,
        signed=SignedReading(reading=reading, signature=signature, batch=batch),
        leaf_hash=leaf_hash,
        received_at=received_at,
        gap=gap,
    )


def reading_leaf_data(stored: StoredReading, message: bytes | None = None) -> bytes:
    """The log leaf of a stored reading (see canonical.reading_leaf)."""
    return reading_leaf(stored.signed, message)


def check_batch_indices(size: int, indices: Sequence[int]) -> None:
    """Raises StoreError unless `indices` are exactly size, size+1, ... in some order."""
    if sorted(indices) != list(range(size, size + len(indices))):
        got = sorted(indices)
        shown = f"{got[0]}..{got[-1]}" if got else "none"
        dupes = len(got) != len(set(got))
        raise StoreError(
            f"batch leaf indices must continue the log: got {len(got)} indices {shown}"
            f"{' with duplicates' if dupes else ''}, want {size}..{size + len(got) - 1}"
        )


def check_batch_seqs(pairs: Sequence[tuple[str, int]]) -> None:
    """Raises StoreError when one (device, seq) appears twice within a batch."""
    if len(set(pairs)) != len(pairs):
        seen: set[tuple[str, int]] = set()
        for pair in pairs:
            if pair in seen:
                raise StoreError(
                    f"batch holds two readings of device {pair[0]} with sequence number {pair[1]}"
                )
            seen.add(pair)


@dataclass(frozen=True, slots=True)
class QueryPlan:
    """A validated ReadingQuery: `after` is the log index the page starts after (-1 for
    the first page); `pattern` the " name " substring to find in the names column."""

    device: str | None
    pattern: str | None
    since: float | None
    until: float | None
    limit: int
    after: int


def plan_query(query: ReadingQuery) -> QueryPlan:
    """Validates a query. Raises InputError for a limit outside 1..1000, a bad cursor or
    an invalid record name. Time bounds select `since <= first record time < until`."""
    if not 1 <= query.limit <= MAX_PAGE:
        raise InputError(f"limit must be 1..{MAX_PAGE}; got {query.limit}")
    if query.name is not None and not NAME_PATTERN.match(query.name):
        raise InputError(f"record name {query.name!r} is not a valid SenML name")
    after = -1 if query.cursor is None else decode_cursor(query.cursor)
    return QueryPlan(
        device=query.device,
        pattern=None if query.name is None else f" {query.name} ",
        since=query.since,
        until=query.until,
        limit=query.limit,
        after=after,
    )


def encode_cursor(last_index: int) -> str:
    """The opaque cursor of the page that ends at log index `last_index`."""
    return base64.urlsafe_b64encode(_CURSOR.pack(last_index)).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """Inverse of encode_cursor. Raises InputError for anything it did not make."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except (binascii.Error, ValueError) as exc:
        raise InputError(f"cursor {cursor!r} is not valid base64") from exc
    if len(raw) != _CURSOR.size or encode_cursor(_CURSOR.unpack(raw)[0]) != cursor:
        raise InputError(f"cursor {cursor!r} was not issued by this store")
    (index,) = _CURSOR.unpack(raw)
    if index >= 1 << 63:
        raise InputError(f"cursor {cursor!r} points past any log index")
    return int(index)
