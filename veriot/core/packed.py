"""Readings that stay in their msgpack encoding until something reads them.

A check process decodes a request and sends the service the readings it checked. The
service itself reads none of them on the hot path: the sequencer orders them by their
columns (ids, sequence numbers, leaf hashes), the store writes their canonical messages,
and the alert process scores them. So they cross from the check process as one msgpack
array (`msgspec.Raw`), and `PackedReadings` holds such arrays as they came, decoding them
only when a caller reads a reading; `parts` hands them on to the alert process as they
are, which costs the service no decoding and no encoding.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import overload

import msgspec

from veriot.core.types import Reading

_decoder = msgspec.msgpack.Decoder(tuple[Reading, ...])
_encoder = msgspec.msgpack.Encoder()

Part = msgspec.Raw | Sequence[Reading]
"""A msgpack array of readings, or readings."""


def pack(readings: Sequence[Reading]) -> msgspec.Raw:
    """`readings` as one msgpack array, to embed in a message (see PackedReadings)."""
    return msgspec.Raw(pack_blob(readings))


def pack_blob(readings: Sequence[Reading]) -> bytes:
    """The bytes of `pack(readings)`, to carry in a message as a blob and take back as
    `msgspec.Raw(blob)`: the receiver's decoder copies a blob, where it would walk an
    embedded array item by item to skip it."""
    return _encoder.encode(readings)


def packed_count(raw: msgspec.Raw | bytes) -> int:
    """The number of entries of a msgpack array, read from its header. Raises ValueError
    unless `raw` starts with an array header."""
    data = memoryview(raw)
    if not data:
        raise ValueError("empty msgpack value; want an array")
    head = data[0]
    if 0x90 <= head <= 0x9F:
        return head - 0x90
    if head == 0xDC and len(data) >= 3:
        return int.from_bytes(data[1:3], "big")
    if head == 0xDD and len(data) >= 5:
        return int.from_bytes(data[1:5], "big")
    raise ValueError(f"msgpack value starts with 0x{head:02x}; want an array")


class PackedReadings(Sequence[Reading]):
    """The readings of `parts` in order, each part a msgpack array of readings (decoded
    on first access, once) or readings. Raises ValueError at construction for a packed
    part that is not a msgpack array; reading one whose entries are not readings raises
    msgspec.DecodeError."""

    __slots__ = ("_decoded", "_length", "_parts")

    _parts: list[Part]
    _length: int
    _decoded: tuple[Reading, ...] | None

    def __init__(self, parts: Iterable[Part]) -> None:
        flat: list[Part] = []
        length = 0
        for part in parts:
            if isinstance(part, PackedReadings):
                flat.extend(part._parts)
                length += part._length
            elif isinstance(part, msgspec.Raw):
                flat.append(part)
                length += packed_count(part)
            else:
                flat.append(part)
                length += len(part)
        self._parts = flat
        self._length = length
        self._decoded = None

    @property
    def parts(self) -> list[Part]:
        """The parts as given (nested PackedReadings flattened), for a message that
        embeds them: msgspec encodes a Raw part as the array it holds."""
        return list(self._parts)

    def _all(self) -> tuple[Reading, ...]:
        decoded = self._decoded
        if decoded is None:
            out: list[Reading] = []
            for part in self._parts:
                out.extend(_decoder.decode(part) if isinstance(part, msgspec.Raw) else part)
            decoded = self._decoded = tuple(out)
        return decoded

    def __len__(self) -> int:
        return self._length

    @overload
    def __getitem__(self, i: int) -> Reading: ...

    @overload
    def __getitem__(self, i: slice) -> tuple[Reading, ...]: ...

    def __getitem__(self, i: int | slice) -> Reading | tuple[Reading, ...]:
        return self._all()[i]

    def __iter__(self) -> Iterator[Reading]:
        return iter(self._all())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, PackedReadings):
            return self._all() == other._all()
        if isinstance(other, Sequence):
            return self._all() == tuple(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._all())

    def __repr__(self) -> str:
        return f"PackedReadings({len(self._parts)} parts, {self._length} readings)"
