"""Segments <-> stored readings: a Segment is the columnar form of accepted readings of
one device at consecutive log indices (see `veriot.core.types.Segment`).

`segment_readings` rebuilds each StoredReading a segment stands for, deriving the batch
paths of sealed members once per segment; `segment_of` cuts StoredReadings into segments,
so that producers which hand over readings one by one share the segment store path.
Pure code: no I/O.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Final

from veriot.core.canonical import device_prefix, reading_message
from veriot.core.columns import MessageRuns
from veriot.core.errors import InputError
from veriot.core.types import (
    BatchAuth,
    Segment,
    StoredReading,
    build_batch_auth,
    build_signed,
    build_stored,
    reading_columns,
)
from veriot.ledger.batch import batch_tree
from veriot.ledger.hashing import HASH_SIZE

__all__ = ["check_segment", "message_columns", "segment_of", "segment_readings"]


_SEQ_COUNT: Final = struct.Struct(">QH")
_TIME: Final = struct.Struct(">d")
_VALUE_TIME: Final = 16
"""Bytes of a record's value and time, after its name and unit (see veriot.core.canonical)."""


def foreign_reading(segment: Segment, offset: int) -> InputError:
    """The error for a segment whose reading at `offset` (from its first) is of another
    device than the segment's: its message does not start with the device's prefix."""
    return InputError(
        f"segment of device {segment.device} at index {segment.first_index} holds a"
        f" reading of another device (at index {segment.first_index + offset})"
    )


def check_segment(segment: Segment, *, columns: bool = True) -> None:
    """Raises InputError unless `segment` is consistent: at least one reading, every
    per-reading column of the same length, readings of `segment.device` only, exactly one
    kind of authentication, and (for a sealed segment) 32-byte seal leaves with every
    position inside the batch. With `columns`, also that its messages are canonical
    reading messages whose seqs, times and record names are its `seqs`, `times` and
    `names` (what the stores index: a wrong seq would let a replay in after a restart, a
    wrong time or name would hide readings from queries; see AppendBatch.columns_derived
    for when the stores leave this out)."""
    n = len(segment.messages)
    if n == 0:
        raise InputError(f"segment at index {segment.first_index} holds no readings")
    lengths = {
        "readings": len(segment.readings),
        "ids": len(segment.ids),
        "leaf_hashes": len(segment.leaf_hashes),
        "gaps": len(segment.gaps),
        "seqs": len(segment.seqs),
        "times": len(segment.times),
    }
    for name, got in lengths.items():
        if got != n:
            raise InputError(
                f"segment at index {segment.first_index} has {got} {name}; want {n} (one per"
                " message)"
            )
    if not segment.names:
        raise InputError(f"segment at index {segment.first_index} has no record names")
    # Every canonical message starts with its device (see veriot.core.canonical), so this
    # checks the device of each reading without decoding one.
    head = device_prefix(segment.device)
    messages = segment.messages
    if not (type(messages) is MessageRuns and messages.head == head):
        for i, message in enumerate(messages):
            if not message.startswith(head):
                raise foreign_reading(segment, i)
    if columns:
        _check_columns(segment, len(head))
    kinds = [
        name
        for name, present in (
            ("signatures", bool(segment.signatures)),
            ("batch_auths", bool(segment.batch_auths)),
            ("seal", segment.seal is not None),
        )
        if present
    ]
    if len(kinds) != 1:
        raise InputError(
            f"segment at index {segment.first_index} must have exactly one of signatures,"
            f" batch_auths and seal; got {', '.join(kinds) or 'none'}"
        )
    seal = segment.seal
    if seal is None:
        if segment.positions:
            raise InputError(f"segment at index {segment.first_index} has positions but no seal")
        auths = len(segment.signatures) or len(segment.batch_auths)
        if auths != n:
            raise InputError(
                f"segment at index {segment.first_index} has {auths} {kinds[0]}; want {n}"
            )
        return
    if len(segment.positions) != n:
        raise InputError(
            f"segment at index {segment.first_index} has {len(segment.positions)} positions;"
            f" want {n}"
        )
    if seal.size == 0 or any(len(leaf) != HASH_SIZE for leaf in seal.leaves):
        raise InputError(
            f"seal of segment at index {segment.first_index} needs 1 or more leaves of"
            f" {HASH_SIZE} bytes"
        )
    if min(segment.positions) < 0 or max(segment.positions) >= seal.size:
        raise InputError(
            f"segment at index {segment.first_index} has positions"
            f" {min(segment.positions)}..{max(segment.positions)}; want 0..{seal.size - 1}"
        )


def _check_columns(segment: Segment, at: int) -> None:
    """Raises InputError unless the seqs, times and names of `segment` are those its
    messages hold (see `_walk`; compared as packed runs, since this runs on every
    reading the log stores)."""
    seq_bytes, time_bytes, seen = _walk(segment.first_index, segment.messages, at)
    seqs_run, times_run = _runs(len(seq_bytes))
    try:
        same = b"".join(seq_bytes) == seqs_run.pack(*segment.seqs) and b"".join(
            time_bytes
        ) == times_run.pack(*segment.times)
    except struct.error:  # a seq outside u64: not the message's
        same = False
    if not same:
        _column_mismatch(segment, seq_bytes, time_bytes)
    names = _encoded_names(segment.names)
    if seen != names or len(names) != len(segment.names):
        missing = sorted(n.decode(errors="replace") for n in seen - names)
        raise InputError(
            f"segment at index {segment.first_index} names records {list(segment.names)};"
            f" its messages name {sorted(n.decode(errors='replace') for n in seen)}"
            + (f" (missing {missing})" if missing else "")
        )


_CACHE_LIMIT: Final = 4096
_RUNS: Final[dict[int, tuple[struct.Struct, struct.Struct]]] = {}
_NAME_SETS: Final[dict[tuple[str, ...], frozenset[bytes]]] = {}


def _runs(n: int) -> tuple[struct.Struct, struct.Struct]:
    """The structs of `n` packed seqs (u64) and `n` packed times (f64), remembered: a
    fleet's segments come in a few lengths, and this is asked for every segment stored."""
    found = _RUNS.get(n)
    if found is None:
        if len(_RUNS) >= _CACHE_LIMIT:
            _RUNS.clear()
        found = _RUNS[n] = (struct.Struct(f">{n}Q"), struct.Struct(f">{n}d"))
    return found


def _encoded_names(names: tuple[str, ...]) -> frozenset[bytes]:
    """The UTF-8 forms of `names`, remembered: segments of a fleet repeat a few sets of
    record names, and this is asked for every segment the log stores."""
    found = _NAME_SETS.get(names)
    if found is None:
        if len(_NAME_SETS) >= _CACHE_LIMIT:
            _NAME_SETS.clear()
        found = _NAME_SETS[names] = frozenset(name.encode() for name in names)
    return found


def message_columns(
    first_index: int, messages: Sequence[bytes], at: int
) -> tuple[tuple[int, ...], tuple[float, ...], tuple[str, ...]]:
    """The `seqs`, `times` and `names` columns of a segment of `messages` at log indices
    from `first_index`, read in place (no Reading is built): canonical reading messages
    whose device prefix is `at` bytes long (precondition). Raises InputError naming the
    first message that is not one."""
    seq_bytes, time_bytes, seen = _walk(first_index, messages, at)
    seqs_run, times_run = _runs(len(seq_bytes))
    return (
        seqs_run.unpack(b"".join(seq_bytes)),
        times_run.unpack(b"".join(time_bytes)),
        tuple(sorted(name.decode(errors="replace") for name in seen)),
    )


def _walk(
    first_index: int, messages: Sequence[bytes], at: int
) -> tuple[list[bytes], list[bytes], set[bytes]]:
    """(each message's 8 seq bytes, each one's first-record time bytes, the record names
    of all) of canonical reading messages whose device prefix is `at` bytes long
    (precondition): u64 seq, u16 count, then the records, each str16 name, str16 unit,
    f64 value, f64 time. Walked by byte indexing (a MessageRuns in its tails, without
    building a message). Raises InputError naming the first message (at log index
    first_index + i) that does not parse as one exactly."""
    if type(messages) is MessageRuns:
        tails = messages.tails
        spans = [(tails, *messages.tail_bounds(i)) for i in range(len(messages))]
    else:
        spans = [(message, at, len(message)) for message in messages]
    return _walk_spans(first_index, spans)


def _walk_spans(
    first_index: int, spans: Sequence[tuple[bytes, int, int]]
) -> tuple[list[bytes], list[bytes], set[bytes]]:
    """_walk of messages whose parts after the device prefix are buf[at:end] for each
    (buf, at, end) of `spans`."""
    seen: set[bytes] = set()
    seq_bytes: list[bytes] = []
    time_bytes: list[bytes] = []
    for i, (message, at, end) in enumerate(spans):
        pos = at + _SEQ_COUNT.size
        count = message[pos - 2] << 8 | message[pos - 1] if pos <= end else 0
        first = 0  # where the first record ends: its time is the 8 bytes before
        for _ in range(count):
            if pos + 2 > end:
                break
            length = message[pos] << 8 | message[pos + 1]
            seen.add(message[pos + 2 : pos + 2 + length])
            pos += 2 + length
            if pos + 2 > end:
                break
            pos += 2 + (message[pos] << 8 | message[pos + 1]) + _VALUE_TIME
            if not first:
                first = pos
        if pos != end or not first:
            raise InputError(
                f"segment at index {first_index} holds a message that is not a"
                f" canonical reading message (at index {first_index + i})"
            )
        seq_bytes.append(message[at : at + 8])
        time_bytes.append(message[first - _TIME.size : first])
    return seq_bytes, time_bytes, seen


def _column_mismatch(
    segment: Segment, seq_bytes: Sequence[bytes], time_bytes: Sequence[bytes]
) -> None:
    """Raises InputError naming the first reading whose seq or time column differs from
    the `seq_bytes` and `time_bytes` read from its message."""
    for i, (seq_raw, time_raw) in enumerate(zip(seq_bytes, time_bytes, strict=True)):
        seq = int.from_bytes(seq_raw, "big")
        (time,) = _TIME.unpack(time_raw)
        if seq != segment.seqs[i] or time != segment.times[i]:
            raise InputError(
                f"segment at index {segment.first_index} says the reading at index"
                f" {segment.first_index + i} has seq {segment.seqs[i]} and time"
                f" {segment.times[i]!r}; its message has seq {seq} and time {time!r}"
            )
    raise InputError(f"segment at index {segment.first_index} has seqs or times out of range")


def segment_auths(segment: Segment) -> tuple[BatchAuth, ...] | None:
    """The batch authentication of each reading of a segment signed by batch (derived from
    the seal for a sealed one), or None for readings with their own signatures.
    Precondition: check_segment(segment) passes."""
    if segment.batch_auths:
        return segment.batch_auths
    seal = segment.seal
    if seal is None:
        return None
    # One pass over the batch tree gives every path; members share the root and signature.
    _, paths = batch_tree(seal.leaves)
    root, size, signature = seal.root, seal.size, seal.signature
    return tuple(
        build_batch_auth(root, size, position, paths[position], signature)
        for position in segment.positions
    )


def segment_readings(segment: Segment, *, columns: bool = True) -> list[StoredReading]:
    """The StoredReadings a segment stands for, in log index order (messages included).
    Raises InputError for an inconsistent segment (see check_segment, which gets
    `columns`: False where the columns were just derived from the messages)."""
    check_segment(segment, columns=columns)
    auths = segment_auths(segment)
    first, received_at = segment.first_index, segment.received_at
    n = len(segment.messages)
    signatures: Sequence[bytes | None] = segment.signatures if auths is None else (None,) * n
    batches: Sequence[BatchAuth | None] = (None,) * n if auths is None else auths
    return [
        build_stored(
            segment.ids[i],
            first + i,
            build_signed(reading, signatures[i], batches[i]),
            segment.leaf_hashes[i],
            received_at,
            segment.gaps[i],
            segment.messages[i],
        )
        for i, reading in enumerate(segment.readings)
    ]


def _kind(stored: StoredReading) -> int:
    """0 for an own signature, 1 for a batch authentication. Raises InputError unless the
    reading has exactly one of them."""
    signed = stored.signed
    if (signed.signature is None) == (signed.batch is None):
        raise InputError(
            f"reading at index {stored.index} needs exactly one of a signature and a batch"
        )
    return 0 if signed.batch is None else 1


def segment_of(readings: Sequence[StoredReading]) -> list[Segment]:
    """The readings cut into segments: runs, in log index order, of readings of one device
    at consecutive indices with the same kind of authentication and the same receive time.
    Batch-signed readings become `batch_auths` segments (their batch's other leaves are
    not known here). Raises InputError for a reading with no canonical encoding or without
    exactly one kind of authentication."""
    ordered = sorted(readings, key=lambda r: r.index)
    out: list[Segment] = []
    start = 0
    for end in range(1, len(ordered) + 1):
        if end < len(ordered):
            prev, cur = ordered[end - 1], ordered[end]
            if (
                cur.index == prev.index + 1
                and cur.signed.reading.device == prev.signed.reading.device
                and cur.received_at == prev.received_at
                and _kind(cur) == _kind(prev)
            ):
                continue
        out.append(_segment(ordered[start:end]))
        start = end
    return out


def _segment(run: Sequence[StoredReading]) -> Segment:
    """One segment of a run that segment_of cut."""
    head = run[0]
    signed = [r.signed for r in run]
    batch = _kind(head) == 1
    readings = tuple(s.reading for s in signed)
    seqs, times, names = reading_columns(readings)
    return Segment(
        device=head.signed.reading.device,
        first_index=head.index,
        received_at=head.received_at,
        readings=readings,
        messages=tuple(r.message or reading_message(r.signed.reading) for r in run),
        ids=tuple(r.id for r in run),
        leaf_hashes=tuple(r.leaf_hash for r in run),
        gaps=tuple(r.gap for r in run),
        seqs=seqs,
        times=times,
        names=names,
        signatures=() if batch else tuple(s.signature or b"" for s in signed),
        batch_auths=tuple(s.batch for s in signed if s.batch is not None) if batch else (),
    )
