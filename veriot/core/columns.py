"""Per-reading byte columns kept as one blob each, with a Sequence view over it.

A run of 100 readings carries 100 ids, 100 leaf hashes and 100 canonical messages. Held
as 300 `bytes` and `str` objects, every hop (a check process's answer, the sequencer's
segments, the store's segment body) builds and walks them one by one. Held as blobs, a
hop moves three byte strings, and the code that needs one item takes it out on access:

- `FixedRuns`: items of one width (32-byte hashes, 64-byte signatures), concatenated;
- `HexIds`: reading ids (hex SHA-256) over the FixedRuns of their 32-byte digests;
- `MessageRuns`: canonical reading messages of one device, which all start with the
  same bytes (the domain and the device id, see `veriot.core.canonical.device_prefix`):
  that head once, then each message's tail, with the tails' lengths as big-endian u32s
  (the layout a stored segment body uses, so storing one copies no message).

Each is a SequenceView: equal to any sequence of the same items and usable wherever one
is. Hot code reads the blobs (`blob`, `digests`, `tails`) directly, and asks
`type(x) is FixedRuns` rather than isinstance (hence final): the classes are Sequences,
so isinstance goes through ABCMeta, which costs a one-reading segment more than the rest
of its encoding. This module is not compiled: mypyc's classes lose the SequenceView
equality they inherit. Pure code: no I/O.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from itertools import accumulate
from typing import final, overload

from veriot.core.canonical import split_prefix
from veriot.core.types import SequenceView

__all__ = ["FixedRuns", "HexIds", "MessageRuns"]

DIGEST_BYTES = 32
_U32 = struct.Struct(">I")


@final
class FixedRuns(SequenceView[bytes]):
    """Items of exactly `width` bytes each, in one blob. Raises ValueError when the blob
    is not a whole number of items."""

    __slots__ = ("blob", "width")

    def __init__(self, blob: bytes, width: int) -> None:
        if width <= 0 or len(blob) % width:
            raise ValueError(f"a blob of {len(blob)} bytes is not a run of {width}-byte items")
        self.blob = blob
        self.width = width

    @classmethod
    def of(cls, items: Sequence[bytes], width: int) -> FixedRuns:
        """`items` in one blob (`items` itself when it already is one of that width).
        Raises ValueError naming the first item that is not `width` bytes long."""
        if type(items) is FixedRuns and items.width == width:
            return items
        for i, item in enumerate(items):
            if len(item) != width:
                raise ValueError(f"item {i} is {len(item)} bytes; want {width}")
        return cls(b"".join(items), width)

    @staticmethod
    def blob_of(items: Sequence[bytes], width: int) -> bytes:
        """`items` joined, unchecked: the blob itself when they are a FixedRuns of that
        width (as the log tree hands its nodes over), without taking them out one by one."""
        if type(items) is FixedRuns and items.width == width:
            return items.blob
        return b"".join(items)

    @classmethod
    def join(cls, runs: Sequence[FixedRuns], width: int) -> FixedRuns:
        """The items of `runs`, in order. Precondition: every run is of `width` bytes."""
        if len(runs) == 1:
            return runs[0]
        return cls(b"".join([run.blob for run in runs]), width)

    def __len__(self) -> int:
        return len(self.blob) // self.width

    @overload
    def __getitem__(self, i: int) -> bytes: ...

    @overload
    def __getitem__(self, i: slice) -> FixedRuns: ...

    def __getitem__(self, i: int | slice) -> bytes | FixedRuns:
        w = self.width
        if isinstance(i, slice):
            start, stop, step = i.indices(len(self))
            if step == 1:
                return FixedRuns(self.blob[start * w : max(start, stop) * w], w)
            return FixedRuns(b"".join([self[k] for k in range(start, stop, step)]), w)
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"index {i} of a run of {n} items")
        return self.blob[i * w : (i + 1) * w]

    def __iter__(self) -> Iterator[bytes]:
        blob, w = self.blob, self.width
        return (blob[k : k + w] for k in range(0, len(blob), w))

    def __hash__(self) -> int:
        return hash(tuple(self))


@final
class HexIds(SequenceView[str]):
    """Reading ids, the lowercase hex of the 32-byte digests in `digests`."""

    __slots__ = ("digests",)

    def __init__(self, digests: FixedRuns) -> None:
        if digests.width != DIGEST_BYTES:
            raise ValueError(f"reading ids are {DIGEST_BYTES}-byte digests; got {digests.width}")
        self.digests = digests

    @classmethod
    def of(cls, ids: Sequence[str]) -> HexIds:
        """`ids` (64 hex digits each) as digests. Raises ValueError for any other string."""
        if type(ids) is HexIds:
            return ids
        try:
            raw = [bytes.fromhex(i) for i in ids]
        except ValueError as exc:
            raise ValueError(f"a reading id is not hex: {exc}") from None
        return cls(FixedRuns.of(raw, DIGEST_BYTES))

    @classmethod
    def join(cls, runs: Sequence[HexIds]) -> HexIds:
        """The ids of `runs`, in order."""
        if len(runs) == 1:
            return runs[0]
        return cls(FixedRuns.join([run.digests for run in runs], DIGEST_BYTES))

    def __len__(self) -> int:
        return len(self.digests)

    @overload
    def __getitem__(self, i: int) -> str: ...

    @overload
    def __getitem__(self, i: slice) -> HexIds: ...

    def __getitem__(self, i: int | slice) -> str | HexIds:
        if isinstance(i, slice):
            return HexIds(self.digests[i])
        return self.digests[i].hex()

    def __iter__(self) -> Iterator[str]:
        text = self.digests.blob.hex()
        size = 2 * DIGEST_BYTES
        return (text[k : k + size] for k in range(0, len(text), size))

    def __hash__(self) -> int:
        return hash(tuple(self))


@final
class MessageRuns(SequenceView[bytes]):
    """Messages that all start with `head`: message i is `head + tail i`, where the tails
    are concatenated in `tails` and `lengths` holds their lengths as big-endian u32s.
    Raises ValueError when the lengths are not whole u32s or do not add up to the
    tails."""

    __slots__ = ("_ends", "head", "lengths", "tails")

    _ends: tuple[int, ...]

    def __init__(self, head: bytes, lengths: bytes, tails: bytes) -> None:
        if len(lengths) % _U32.size:
            raise ValueError(f"{len(lengths)} bytes of lengths are not whole u32s")
        ends = tuple(accumulate(struct.unpack(f">{len(lengths) // _U32.size}I", lengths)))
        if (ends[-1] if ends else 0) != len(tails):
            raise ValueError(
                f"tail lengths add up to {ends[-1] if ends else 0} bytes; the tails hold"
                f" {len(tails)}"
            )
        self.head = head
        self.lengths = lengths
        self.tails = tails
        self._ends = ends

    @classmethod
    def of(cls, head: bytes, messages: Sequence[bytes]) -> MessageRuns:
        """`messages` with their common `head` split off (`messages` itself when it
        already is a MessageRuns of that head). Raises ValueError naming the first
        message that does not start with `head`."""
        if type(messages) is MessageRuns and messages.head == head:
            return messages
        return cls(head, *split_prefix(head, messages))

    @classmethod
    def join(cls, runs: Sequence[MessageRuns]) -> MessageRuns:
        """The messages of `runs`, in order. Raises ValueError unless they share a head."""
        if len(runs) == 1:
            return runs[0]
        head = runs[0].head
        if any(run.head != head for run in runs):
            raise ValueError("message runs of different heads cannot be joined")
        return cls(
            head,
            b"".join([run.lengths for run in runs]),
            b"".join([run.tails for run in runs]),
        )

    def tail_bounds(self, i: int) -> tuple[int, int]:
        """Where tail i starts and ends in `tails`. Precondition: 0 <= i < len(self)."""
        ends = self._ends
        return (ends[i - 1] if i else 0), ends[i]

    def __len__(self) -> int:
        return len(self._ends)

    @overload
    def __getitem__(self, i: int) -> bytes: ...

    @overload
    def __getitem__(self, i: slice) -> MessageRuns: ...

    def __getitem__(self, i: int | slice) -> bytes | MessageRuns:
        n = len(self._ends)
        if isinstance(i, slice):
            start, stop, step = i.indices(n)
            if step != 1:
                return MessageRuns.of(self.head, [self[k] for k in range(start, stop, step)])
            stop = max(start, stop)
            begin = self.tail_bounds(start)[0] if start < n else len(self.tails)
            finish = self.tail_bounds(stop - 1)[1] if stop > start else begin
            return MessageRuns(
                self.head,
                self.lengths[start * _U32.size : stop * _U32.size],
                self.tails[begin:finish],
            )
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"index {i} of a run of {n} messages")
        start, end = self.tail_bounds(i)
        return self.head + self.tails[start:end]

    def __iter__(self) -> Iterator[bytes]:
        head, tails, start = self.head, self.tails, 0
        for end in self._ends:
            yield head + tails[start:end]
            start = end

    def __hash__(self) -> int:
        return hash(tuple(self))
