"""PackedReadings: readings kept as the msgpack arrays they crossed a pipe in, decoded
only when read, and handed on as they are."""

from __future__ import annotations

import msgspec
import pytest

from veriot.core.packed import PackedReadings, pack, packed_count
from veriot.core.types import Reading, Record


def readings(device: str, first: int, n: int) -> list[Reading]:
    return [
        Reading(device, first + i, (Record("temperature", 4.0 + i, 1e9 + i, "Cel"),))
        for i in range(n)
    ]


@pytest.mark.parametrize("n", [0, 1, 15, 16, 300, 70_000])
def test_the_count_is_read_from_the_array_header(n: int) -> None:
    raw = msgspec.msgpack.encode(list(range(n)))
    assert packed_count(msgspec.Raw(raw)) == n


@pytest.mark.parametrize("raw", [b"", b"\x80", b"\xc0", b"\xdc\x01"])
def test_a_value_that_is_not_an_array_is_refused(raw: bytes) -> None:
    with pytest.raises(ValueError):
        PackedReadings([msgspec.Raw(raw)])


def test_packed_and_plain_parts_read_as_the_readings_in_order() -> None:
    a, b, c = readings("did:a", 1, 20), readings("did:a", 21, 3), readings("did:a", 24, 5)
    packed = PackedReadings([pack(a), b, PackedReadings([pack(c)])])
    assert len(packed) == 28  # known before anything is decoded
    assert list(packed) == a + b + c
    assert packed[20] == b[0] and packed[-1] == c[-1]
    assert packed[1:3] == tuple(a[1:3])
    assert packed == tuple(a + b + c) and packed != tuple(a)


def test_parts_go_on_as_they_came_and_decode_as_readings_at_the_other_end() -> None:
    a, b = readings("did:a", 1, 4), readings("did:a", 5, 2)
    packed = PackedReadings([pack(a), b])
    parts = packed.parts
    assert isinstance(parts[0], msgspec.Raw) and parts[1] == b
    # A message that embeds the parts: the packed one is spliced in as its bytes.
    wire = msgspec.msgpack.encode([parts])
    (decoded,) = msgspec.msgpack.decode(wire, type=list[list[tuple[Reading, ...]]])
    assert [r for part in decoded for r in part] == a + b


def test_a_packed_part_that_holds_no_readings_fails_when_read() -> None:
    packed = PackedReadings([msgspec.Raw(msgspec.msgpack.encode([1, 2]))])
    assert len(packed) == 2
    with pytest.raises(msgspec.ValidationError):
        list(packed)
