"""How the SQL stores lay out values in rows: shared by the SQLite and PostgreSQL adapters.

Readings are stored as segments (`veriot.core.types.Segment`): one `segments` row per run
of readings of one device at consecutive log indices, plus what finds a reading by its id:
a `recent_ids` row per append while its epoch of 2**14 log indices is still being
written (`recent_id_rows`), and once the epoch is complete, 256 `id_chunks` rows of the
epoch's ids, one per value of their first byte (`seal_recent_ids`). (Stores written
before migration 4 of SQLite, 5 of PostgreSQL have one `reading_ids` row per reading up
to then, `id_rows`.) The segment row holds the columns queries filter on
(device, seq range, range of first-record times, the union of record names as
" a b c ") and a `body` blob with everything else:

    body       = u8(SEGMENT_FORMAT) u8(kind) u32(n)
                 u16(h) head[h]                 (what every message starts with: its
                                                 domain and device, device_prefix)
                 u8[n]                          (gap flags, 0 or 1)
                 u32[n](tail lengths) tails     (each canonical message after the head)
                 auth
    auth(kind 1, own signatures)  = u16[n](signature lengths) signatures
    auth(kind 2, batch auths)     = n * ( root[32] u32(size) u32(index) u16(h) h * hash[32]
                                          u16(signature length) signature )
    auth(kind 3, sealed batch)    = root[32] u32(size) size * hash[32]
                                    u16(signature length) signature u32[n](positions)

Integers are big-endian. Neither ids nor leaf hashes are stored: a reading's id is the
SHA-256 of its message and its leaf hash that of its log leaf (its auth and its message,
see `canonical.reading_leaf`), both recomputed when it is read, so they always name the
bytes they came back with (the tree's own leaf hashes, in node_tiles, are what the log
committed to; `veriot verify` compares the two). A message's device prefix is stored once
per segment. `decode_segment` refuses a body that does not parse exactly (StoreError).

Bodies of format 1 (written before format 2) also hold the log leaf hashes and every
message whole:

    body v1    = u8(1) u8(kind) u32(n)
                 u32[n](message lengths) messages  hash[32][n](log leaf hashes)
                 u8[n](gap flags)  auth

The legacy layout (migrations 1 and 2, converted to segments on open) kept a reading as
its canonical message (`canonical.reading_message`) plus an `auth` blob, so that it is
rebuilt bit for bit:

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
import bisect
import hashlib
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, overload

from veriot.core.canonical import (
    HASH_BYTES,
    NAME_PATTERN,
    MissingPrefix,
    batch_leaf_prefix,
    device_prefix,
    parse_reading_message,
    reading_leaf,
    reading_message,
    signature_leaf_prefix,
    split_prefix,
)
from veriot.core.columns import FixedRuns, HexIds, MessageRuns
from veriot.core.errors import InputError, StoreError
from veriot.core.types import (
    BatchAuth,
    BatchSeal,
    ReadingQuery,
    Segment,
    SequenceView,
    SignedReading,
    StoredReading,
    build_batch_auth,
    reading_columns,
)
from veriot.ledger.hashing import leaf_hash
from veriot.ledger.segment import foreign_reading

AUTH_SIGNATURE: Final = 1
AUTH_BATCH: Final = 2

ID_EPOCH_BITS: Final = 14
"""The reading-id indexes are keyed by (log index >> 14, id key); see the first migration.
An epoch's id_chunks rows are written when the log passes its end (see `ids_to_seal`)."""

ID_BUCKETS: Final = 256
"""The id_chunks rows of an epoch: one per value of the ids' first byte (about 64 ids
each in a complete epoch)."""

ID_KEY_BYTES: Final = 8
"""The bytes of a reading id (its first 8) that the id indexes keep."""

MAX_PAGE: Final = 1000
"""The largest `ReadingQuery.limit` a store serves."""

_BATCH_HEAD: Final = struct.Struct(">32sIIH")
_CURSOR: Final = struct.Struct(">Q")
_VALUE_TIME: Final = struct.Struct(">dd")


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


def id_key_bytes(reading_id: str) -> bytes:
    """The first 8 bytes of a reading id, as `recent_ids` keeps them. Raises ValueError
    for non-hex input."""
    return bytes.fromhex(reading_id[: 2 * ID_KEY_BYTES])


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


def check_batch_ranges(size: int, ranges: Sequence[tuple[int, int]]) -> None:
    """Raises StoreError unless the half-open index ranges [start, end) tile the indices
    size, size+1, ... exactly once each."""
    expected = size
    for start, end in sorted(ranges):
        if start != expected or end <= start:
            check_batch_indices(size, [i for a, b in ranges for i in range(a, b)])
            raise StoreError(f"batch leaf ranges must continue the log from {size}")
        expected = end


def batch_seqs(segments: Sequence[Segment]) -> dict[str, set[int]]:
    """The sequence numbers of each device in the segments of a batch. Raises StoreError
    when one (device, seq) appears twice."""
    out: dict[str, set[int]] = {}
    for segment in segments:
        seqs = segment.seqs
        known = out.setdefault(segment.device, set())
        before = len(known)
        known.update(seqs)
        if len(known) != before + len(seqs):
            # A repeat somewhere: let the pairwise check name it.
            check_batch_seqs([(s.device, seq) for s in segments for seq in s.seqs])
    return out


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


def plan_matches(plan: QueryPlan, stored: StoredReading) -> bool:
    """True when a reading of the planned device (not checked here) is on the page side
    of the cursor and passes the name and time filters."""
    if stored.index <= plan.after:
        return False
    records = stored.signed.reading.records
    first = records[0].time
    if plan.since is not None and first < plan.since:
        return False
    if plan.until is not None and first >= plan.until:
        return False
    if plan.pattern is not None:
        name = plan.pattern[1:-1]
        return any(r.name == name for r in records)
    return True


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


# -- segments -------------------------------------------------------------------------

SEGMENT_FORMAT: Final = 2
"""The first byte of every segment body written; format 1 bodies are read too."""
SEGMENT_FORMAT_V1: Final = 1

SEG_SIGNATURES: Final = 1
SEG_BATCH_AUTHS: Final = 2
SEG_SEALED: Final = 3

_SEG_HEAD: Final = struct.Struct(">BBI")
_U16: Final = struct.Struct(">H")
_U32: Final = struct.Struct(">I")
_U64: Final = struct.Struct(">Q")
_SEAL_HEAD: Final = struct.Struct(">32sI")

SegmentValues = tuple[int, int, int, int, int, float, float, str, float, bytes]
"""A segments row: first_idx, count, device_id, min_seq, max_seq, min_time, max_time,
names, received_at, body."""

IdValues = tuple[int, int, int]
"""A reading_ids row: epoch, id_key, idx."""

RecentIdValues = tuple[int, bytes]
"""A recent_ids row: first_idx, id_keys (the first 8 bytes of the id of each reading at
first_idx, first_idx + 1, ..., in log order)."""

IdChunkValues = tuple[int, int, bytes, bytes]
"""An id_chunks row: epoch, bucket (the first byte of its ids), id_keys (8 bytes per id),
offsets (u16 per id: its log index minus epoch << 14), the ids in log order."""


def encode_segment_body(segment: Segment) -> bytes:
    """The body blob of a segment (see the module docstring). Precondition: the segment
    passes `veriot.ledger.segment.check_segment` (every message starts with its device's
    prefix). Raises InputError for a batch root or path hash that is not 32 bytes, or a
    signature longer than 65535 bytes."""
    n = len(segment.messages)
    head = device_prefix(segment.device)
    lengths, tails = _tails(segment, head)
    if segment.seal is not None:
        kind = SEG_SEALED
        auth = _seal_blob(segment.seal, segment.positions)
    elif segment.batch_auths:
        kind = SEG_BATCH_AUTHS
        auth = b"".join([_batch_auth_blob(b) for b in segment.batch_auths])
    else:
        kind = SEG_SIGNATURES
        auth = _signatures_blob(segment.signatures)
    return b"".join(
        (
            _SEG_HEAD.pack(SEGMENT_FORMAT, kind, n),
            _U16.pack(len(head)),
            head,
            bytes(segment.gaps),
            lengths,
            tails,
            auth,
        )
    )


def _tails(segment: Segment, head: bytes) -> tuple[bytes, bytes]:
    """(the u32 lengths, the concatenation) of the segment's messages after `head`: a
    MessageRuns of that head as it is, other messages split by canonical.split_prefix,
    compiled like this module (a one-reading segment costs no MessageRuns). Raises
    InputError for a message that does not start with `head`."""
    messages = segment.messages
    if type(messages) is MessageRuns and messages.head == head:
        return messages.lengths, messages.tails
    try:
        return split_prefix(head, messages)
    except MissingPrefix as exc:
        raise foreign_reading(segment, exc.index) from None


def _signatures_blob(signatures: Sequence[bytes]) -> bytes:
    if type(signatures) is FixedRuns:
        n = len(signatures)
        return struct.pack(f">{n}H", *([signatures.width] * n)) + signatures.blob
    return struct.pack(f">{len(signatures)}H", *map(len, signatures)) + b"".join(signatures)


def _batch_auth_blob(batch: BatchAuth) -> bytes:
    path = b"".join(batch.path)
    if len(batch.root) != HASH_BYTES or len(path) != HASH_BYTES * len(batch.path):
        raise InputError(f"batch root and path hashes must be {HASH_BYTES} bytes")
    return (
        _BATCH_HEAD.pack(batch.root, batch.size, batch.index, len(batch.path))
        + path
        + _U16.pack(len(batch.signature))
        + batch.signature
    )


def _seal_blob(seal: BatchSeal, positions: Sequence[int]) -> bytes:
    if len(seal.root) != HASH_BYTES:
        raise InputError(f"a seal root is {HASH_BYTES} bytes; got {len(seal.root)}")
    return b"".join(
        (
            _SEAL_HEAD.pack(seal.root, seal.size),
            *seal.leaves,
            _U16.pack(len(seal.signature)),
            seal.signature,
            struct.pack(f">{len(positions)}I", *positions),
        )
    )


@dataclass(frozen=True, slots=True)
class SegmentBody:
    """A decoded segment body: the per-reading columns of the readings taken (all, or a
    range of them) and exactly one kind of auth."""

    messages: Sequence[bytes]
    leaf_hashes: Sequence[bytes]
    """Recomputed from the auth and the messages (format 2), for the readings taken."""
    gaps: tuple[bool, ...]
    signatures: tuple[bytes, ...] = ()
    batch_auths: tuple[BatchAuth, ...] = ()
    seal: BatchSeal | None = None
    positions: tuple[int, ...] = ()


class _LeafHashes(SequenceView[bytes]):
    """The log leaf hashes of messages whose leaves start with `prefixes[i]`, each hashed
    when taken (a proof of one reading of a segment hashes one leaf, not all)."""

    __slots__ = ("_messages", "_prefixes")

    def __init__(self, prefixes: Sequence[bytes], messages: Sequence[bytes]) -> None:
        self._prefixes = prefixes
        self._messages = messages

    def __len__(self) -> int:
        return len(self._messages)

    @overload
    def __getitem__(self, i: int) -> bytes: ...

    @overload
    def __getitem__(self, i: slice) -> _LeafHashes: ...

    def __getitem__(self, i: int | slice) -> bytes | _LeafHashes:
        if isinstance(i, slice):
            return _LeafHashes(self._prefixes[i], self._messages[i])
        return leaf_hash(self._prefixes[i] + self._messages[i])


class _Reader:
    """Reads a body front to back; any overrun is a corrupt body."""

    __slots__ = ("body", "pos")

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.pos = 0

    def take(self, n: int) -> bytes:
        end = self.pos + n
        if end > len(self.body):
            raise StoreError(f"segment body ends at byte {len(self.body)}; wanted {end}")
        out = self.body[self.pos : end]
        self.pos = end
        return out

    def unpack(self, fmt: str | struct.Struct) -> tuple[Any, ...]:
        s = fmt if isinstance(fmt, struct.Struct) else struct.Struct(fmt)
        return s.unpack(self.take(s.size))


def _read_messages(r: _Reader, n: int) -> tuple[bytes, MessageRuns]:
    """(gap flags, messages) of the `n` readings of a format 2 body, read from just after
    its u8 u8 u32 head."""
    (head_length,) = r.unpack(_U16)
    head = r.take(head_length)
    gap_bytes = r.take(n)
    lengths = r.take(_U32.size * n)
    tails_length = sum(struct.unpack(f">{n}I", lengths))
    return gap_bytes, MessageRuns(head, lengths, r.take(tails_length))


def decode_segment_body(body: bytes, start: int = 0, end: int | None = None) -> SegmentBody:
    """Inverse of encode_segment_body (format 1 bodies too), for the readings
    `start <= i < end` (all by default): the whole body is parsed and checked, but only
    the readings taken have their signatures, batch auths and leaf prefixes built (a
    proof of one reading of a segment reads one). Raises StoreError for a body that does
    not parse exactly (wrong format byte, unknown kind, short or trailing bytes, a gap
    flag other than 0 or 1) or a range outside its readings."""
    r = _Reader(body)
    fmt, kind, n = r.unpack(_SEG_HEAD)
    if fmt not in (SEGMENT_FORMAT, SEGMENT_FORMAT_V1):
        raise StoreError(
            f"segment body has format {fmt}; want {SEGMENT_FORMAT_V1} or {SEGMENT_FORMAT}"
        )
    if n == 0:
        raise StoreError("segment body holds no readings")
    stop = n if end is None else end
    if not 0 <= start < stop <= n:
        raise StoreError(f"segment body holds {n} readings; asked for {start}..{stop}")
    stored_leaves: tuple[bytes, ...] | None = None
    messages: Sequence[bytes]
    if fmt == SEGMENT_FORMAT:
        gap_bytes, messages = _read_messages(r, n)
    else:
        lengths_v1 = r.unpack(f">{n}I")
        messages = tuple(r.take(length) for length in lengths_v1)
        raw = r.take(HASH_BYTES * n)
        stored_leaves = tuple(raw[i : i + HASH_BYTES] for i in range(0, len(raw), HASH_BYTES))
        gap_bytes = r.take(n)
    if any(b > 1 for b in gap_bytes):
        raise StoreError("segment body has a gap flag other than 0 or 1")
    whole = start == 0 and stop == n
    if not whole:
        messages = messages[start:stop]
        gap_bytes = gap_bytes[start:stop]
    gaps = tuple(b == 1 for b in gap_bytes)
    signatures: tuple[bytes, ...] = ()
    auths: tuple[BatchAuth, ...] = ()
    seal: BatchSeal | None = None
    positions: tuple[int, ...] = ()
    if kind == SEG_SIGNATURES:
        sig_lengths = r.unpack(f">{n}H")
        r.take(sum(sig_lengths[:start]))
        signatures = tuple(r.take(k) for k in sig_lengths[start:stop])
        r.take(sum(sig_lengths[stop:]))
        prefixes: Sequence[bytes] = [signature_leaf_prefix(sig) for sig in signatures]
    elif kind == SEG_BATCH_AUTHS:
        found = []
        for i in range(n):
            root, size, index, hashes = r.unpack(_BATCH_HEAD)
            if not start <= i < stop:
                r.take(HASH_BYTES * hashes)
                (sig_len,) = r.unpack(_U16)
                r.take(sig_len)
                continue
            path = tuple(r.take(HASH_BYTES) for _ in range(hashes))
            (sig_len,) = r.unpack(_U16)
            found.append(build_batch_auth(root, size, index, path, r.take(sig_len)))
        auths = tuple(found)
        prefixes = [batch_leaf_prefix(a.root, a.size, a.signature) for a in auths]
    elif kind == SEG_SEALED:
        root, size = r.unpack(_SEAL_HEAD)
        raw = r.take(HASH_BYTES * size)
        leaves = tuple(raw[i : i + HASH_BYTES] for i in range(0, len(raw), HASH_BYTES))
        (sig_len,) = r.unpack(_U16)
        seal = BatchSeal(root, r.take(sig_len), leaves)
        every = r.unpack(f">{n}I")
        if size == 0 or max(every) >= size:
            raise StoreError(f"segment body has a position outside its batch of {size}")
        positions = every if whole else every[start:stop]
        prefixes = [batch_leaf_prefix(root, size, seal.signature)] * (stop - start)
    else:
        raise StoreError(f"segment body has auth kind {kind}; want 1, 2 or 3")
    if r.pos != len(body):
        raise StoreError(f"segment body has {len(body) - r.pos} trailing bytes")
    if stored_leaves is not None and not whole:
        stored_leaves = stored_leaves[start:stop]
    return SegmentBody(
        messages,
        _LeafHashes(prefixes, messages) if stored_leaves is None else stored_leaves,
        gaps,
        signatures=signatures,
        batch_auths=auths,
        seal=seal,
        positions=positions,
    )


def decode_segment(
    first_index: int, received_at: float, body: bytes, start: int = 0, end: int | None = None
) -> Segment:
    """The Segment of readings `start <= i < end` (all by default) of a stored segment
    row whose first reading is at log index `first_index`. Requires 0 <= start < end <=
    the row's count. Raises StoreError for a corrupt body or message."""
    try:
        decoded = decode_segment_body(body, start, end)
    except StoreError as exc:
        raise StoreError(f"segment at index {first_index}: {exc}") from exc
    messages = decoded.messages
    readings = []
    for i, message in enumerate(messages, start):
        try:
            readings.append(parse_reading_message(message))
        except InputError as exc:
            raise StoreError(
                f"stored reading at index {first_index + i} is corrupt: {exc}"
            ) from exc
    devices = {reading.device for reading in readings}
    if len(devices) != 1:
        raise StoreError(f"segment at index {first_index} holds readings of {len(devices)} devices")
    sha = hashlib.sha256
    seqs, times, names = reading_columns(readings)
    return Segment(
        device=readings[0].device,
        first_index=first_index + start,
        received_at=received_at,
        readings=tuple(readings),
        messages=messages,
        ids=tuple(sha(m).hexdigest() for m in messages),
        leaf_hashes=tuple(decoded.leaf_hashes),
        gaps=decoded.gaps,
        seqs=seqs,
        times=times,
        names=names,
        signatures=decoded.signatures,
        batch_auths=decoded.batch_auths,
        seal=decoded.seal,
        positions=decoded.positions,
    )


def segment_seqs(body: bytes) -> list[int]:
    """The sequence numbers of a stored segment's readings, in order, read without
    decoding its messages (in a format 2 body each tail, the message after the device
    prefix, starts with the u64 seq): finding one reading by its seq then decodes that
    reading alone. Raises StoreError for a body too short for its counts; the rest of
    the body is checked when its readings are decoded."""
    r = _Reader(body)
    fmt, _kind, n = r.unpack(_SEG_HEAD)
    if fmt != SEGMENT_FORMAT:
        return [reading.seq for reading in decode_segment(0, 0.0, body).readings]
    _gaps, messages = _read_messages(r, n)
    tails = messages.tails
    seqs = []
    pos = 0
    unpack_seq = _U64.unpack_from
    for length in struct.unpack(f">{n}I", messages.lengths):
        if length < _U64.size:
            raise StoreError(f"segment body has a message tail too short for its seq at {pos}")
        seqs.append(int(unpack_seq(tails, pos)[0]))
        pos += length
    return seqs


def segment_values(segment: Segment, device_id: int) -> SegmentValues:
    """The segments row of a segment of the device with row id `device_id`.
    Preconditions: the segment passes `veriot.ledger.segment.check_segment` and its ids
    are the reading ids of its messages. Raises InputError as encode_segment_body does."""
    return (
        segment.first_index,
        *index_values(len(segment.messages), device_id, segment.seqs, segment.times, segment.names),
        segment.received_at,
        encode_segment_body(segment),
    )


IndexValues = tuple[int, int, int, int, float, float, str]
"""The SEGMENT_INDEX_COLUMNS of a segments row, in order."""


def index_values(
    count: int,
    device_id: int,
    seqs: Sequence[int],
    times: Sequence[float],
    names: Sequence[str],
) -> IndexValues:
    """The SEGMENT_INDEX_COLUMNS of a segment of `count` readings of the device with row
    id `device_id`, from its seqs, first-record times and sorted record names."""
    return (
        count,
        device_id,
        min(seqs),
        max(seqs),
        min(times),
        max(times),
        " " + " ".join(names) + " ",
    )


SEGMENT_INDEX_COLUMNS = (
    "count",
    "device_id",
    "min_seq",
    "max_seq",
    "min_time",
    "max_time",
    "names",
)
"""The columns of a segments row that index its readings (SegmentValues[1:8])."""


def index_differences(stored: Sequence[Any], expected: IndexValues) -> list[str]:
    """How the SEGMENT_INDEX_COLUMNS of a stored segments row (`stored`, in that order)
    differ from the `index_values` of the readings its body holds, one phrase per column:
    `max_seq is 5, its readings say 9`."""
    return [
        f"{column} is {got!r}, its readings say {want!r}"
        for column, got, want in zip(SEGMENT_INDEX_COLUMNS, stored, expected, strict=True)
        if got != want
    ]


def id_values(segment: Segment) -> list[IdValues]:
    """The reading_ids rows of a segment: (epoch, id key, log index) per reading."""
    return id_rows(segment.first_index, segment.ids)


def recent_id_rows(segments: Sequence[Segment]) -> list[RecentIdValues]:
    """The recent_ids rows of the segments of one append: one per run of segments at
    consecutive log indices (usually the whole append: only an alert between two
    segments splits it), so that an append of many small segments writes one row."""
    rows: list[RecentIdValues] = []
    run: list[bytes] = []
    first = end = -1
    for segment in sorted(segments, key=lambda s: s.first_index):
        if segment.first_index != end and run:
            rows.append((first, b"".join(run)))
            run = []
        if not run:
            first = segment.first_index
        run.append(_id_keys(segment.ids))
        end = segment.first_index + len(segment.ids)
    if run:
        rows.append((first, b"".join(run)))
    return rows


def _id_keys(ids: Sequence[str]) -> bytes:
    """The first 8 bytes of each of `ids`, in order."""
    if type(ids) is HexIds:
        blob = ids.digests.blob
        return b"".join([blob[i : i + ID_KEY_BYTES] for i in range(0, len(blob), HASH_BYTES)])
    return b"".join([id_key_bytes(reading_id) for reading_id in ids])


def recent_id_entries(
    first: int, keys: bytes, start: int = 0, stop: int = 1 << 63
) -> list[IdValues]:
    """The reading_ids rows that a recent_ids row stands for: (epoch, id key, log index)
    per reading whose log index is in [start, stop). A trailing part shorter than a key
    is ignored (the audit then reports the reading it should have named as not found by
    id)."""
    half, unpack = 1 << 63, _U64.unpack_from
    low, high = max(0, start - first), min(len(keys) // ID_KEY_BYTES, stop - first)
    return [
        ((first + i) >> ID_EPOCH_BITS, unpack(keys, i * ID_KEY_BYTES)[0] - half, first + i)
        for i in range(low, high)
    ]


def _key_positions(keys: bytes, key: bytes) -> list[int]:
    """The positions i where keys[8i : 8i + 8] is `key`."""
    out: list[int] = []
    at = keys.find(key)
    while at >= 0:
        if at % ID_KEY_BYTES == 0:
            out.append(at // ID_KEY_BYTES)
        at = keys.find(key, at + 1)
    return out


def recent_id_matches(first: int, keys: bytes, key: bytes) -> list[int]:
    """The log indices whose key in the recent_ids row (`first`, `keys`) is `key`."""
    return [first + i for i in _key_positions(keys, key)]


def chunk_entries(
    epoch: int, keys: bytes, offsets: bytes, start: int = 0, stop: int = 1 << 63
) -> list[IdValues]:
    """The (epoch, id key, log index) of each id of an id_chunks row whose log index is
    in [start, stop). (A chunk's ids are in log order, so only those are unpacked.)"""
    half, base, unpack = 1 << 63, epoch << ID_EPOCH_BITS, _U64.unpack_from
    count = min(len(keys) // ID_KEY_BYTES, len(offsets) // 2)
    indices = [base + offset for offset in struct.unpack_from(f">{count}H", offsets)]
    first, end = bisect.bisect_left(indices, start), bisect.bisect_left(indices, stop)
    return [
        (epoch, unpack(keys, i * ID_KEY_BYTES)[0] - half, indices[i]) for i in range(first, end)
    ]


def chunk_matches(epoch: int, keys: bytes, offsets: bytes, key: bytes) -> list[int]:
    """The log indices whose key in the id_chunks row of `epoch` with `keys` and
    `offsets` is `key`."""
    base = epoch << ID_EPOCH_BITS
    return [
        base + _U16.unpack_from(offsets, 2 * i)[0]
        for i in _key_positions(keys, key)
        if 2 * i + 2 <= len(offsets)
    ]


def seal_recent_ids(
    rows: Sequence[RecentIdValues], boundary: int
) -> tuple[list[IdChunkValues], list[RecentIdValues]]:
    """The id_chunks rows of the ids below `boundary` (an epoch's end) in recent_ids
    `rows`, and what stays in recent_ids: the part of a row at and after
    `boundary`, as a row of its own. Every id of an epoch is sealed by one call, so each
    epoch's chunks are written once, and a lookup finds an id in the one chunk of each
    epoch named by its first byte."""
    width = ID_KEY_BYTES
    # Per epoch, each bucket's keys and offsets, filled in log order.
    keys_of: dict[int, list[bytearray]] = {}
    offsets_of: dict[int, list[list[int]]] = {}
    rest: list[RecentIdValues] = []
    mask = (1 << ID_EPOCH_BITS) - 1
    for first, keys in sorted(rows):
        count = len(keys) // width
        sealed = min(count, max(0, boundary - first))
        at = 0
        while at < sealed:  # the part of the row in one epoch
            index = first + at
            epoch = index >> ID_EPOCH_BITS
            end = min(sealed, at + ((epoch + 1) << ID_EPOCH_BITS) - index)
            if epoch not in keys_of:
                keys_of[epoch] = [bytearray() for _ in range(ID_BUCKETS)]
                offsets_of[epoch] = [[] for _ in range(ID_BUCKETS)]
            bucket_keys, bucket_offsets = keys_of[epoch], offsets_of[epoch]
            offset = (index & mask) - at
            for i in range(at, end):
                start = i * width
                bucket = keys[start]
                bucket_keys[bucket] += keys[start : start + width]
                bucket_offsets[bucket].append(offset + i)
            at = end
        if sealed < count:
            rest.append((first + sealed, keys[sealed * width : count * width]))
    chunks: list[IdChunkValues] = []
    for epoch in sorted(keys_of):
        for bucket, offsets in enumerate(offsets_of[epoch]):
            if offsets:
                packed = struct.pack(f">{len(offsets)}H", *offsets)
                chunks.append((epoch, bucket, bytes(keys_of[epoch][bucket]), packed))
    return chunks, rest


def ids_to_seal(old_size: int, new_size: int) -> int | None:
    """When an append takes the log from `old_size` to `new_size` entries past the end
    of an id epoch: the end of the last epoch it completes. The ids in the recent_ids
    rows below it then move to id_chunks rows (`seal_recent_ids`) in the same
    transaction, so that each reading's id is in exactly one of the tables.

    Why: a row per reading, which reading_ids was, cost the SQLite append about 40% of
    its time (bench/store.py), sorted or not. A recent_ids row is one insert per append,
    and an epoch's 2**14 ids make 256 id_chunks rows (ID_BUCKETS)."""
    boundary = (new_size >> ID_EPOCH_BITS) << ID_EPOCH_BITS
    return boundary if boundary > old_size else None


def id_rows(first: int, ids: Sequence[str]) -> list[IdValues]:
    """The reading_ids rows of readings with `ids` at log indices first, first+1, ...
    (each key the id_key of its id, read straight from the digests of HexIds)."""
    half = 1 << 63
    if type(ids) is HexIds:
        blob, unpack = ids.digests.blob, _U64.unpack_from
        return [
            ((first + i) >> ID_EPOCH_BITS, unpack(blob, i * HASH_BYTES)[0] - half, first + i)
            for i in range(len(ids))
        ]
    return [
        ((first + i) >> ID_EPOCH_BITS, int(reading_id[:16], 16) - half, first + i)
        for i, reading_id in enumerate(ids)
    ]
