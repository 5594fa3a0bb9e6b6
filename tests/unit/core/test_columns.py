"""Byte columns: each view is the sequence of its items, however it is sliced or joined,
and refuses a blob that is not a whole run of them."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from veriot.core.columns import FixedRuns, HexIds, MessageRuns

HEAD = b"veriot.reading.v1\n\x00\x04dev1"
tails = st.lists(st.binary(max_size=40), max_size=12)
Bounds = tuple[int | None, int | None]
slices = st.tuples(st.integers(-15, 15) | st.none(), st.integers(-15, 15) | st.none())


@given(st.lists(st.binary(min_size=4, max_size=4), max_size=12), slices)
def test_fixed_runs_are_their_items(
    items: list[bytes], bounds: tuple[int | None, int | None]
) -> None:
    run = FixedRuns.of(items, 4)
    assert list(run) == items and len(run) == len(items) and run == items
    assert [run[i] for i in range(-len(items), len(items))] == items + items
    part = run[slice(*bounds)]
    assert list(part) == items[slice(*bounds)]
    assert list(run[::2]) == items[::2]
    assert FixedRuns.join([run, part], 4) == items + items[slice(*bounds)]


def test_fixed_runs_refuse_items_of_another_width() -> None:
    with pytest.raises(ValueError, match="item 1 is 3 bytes; want 4"):
        FixedRuns.of([b"abcd", b"abc", b"abcde"], 4)
    with pytest.raises(ValueError, match="not a run of 4-byte items"):
        FixedRuns(b"abcdefg", 4)
    with pytest.raises(IndexError):
        FixedRuns(b"abcd", 4)[1]


@given(st.lists(st.binary(max_size=20), max_size=8))
def test_hex_ids_are_the_hex_of_their_digests(messages: list[bytes]) -> None:
    ids = [hashlib.sha256(m).hexdigest() for m in messages]
    view = HexIds.of(ids)
    assert list(view) == ids and view == ids and len(view) == len(ids)
    assert [view[i] for i in range(len(ids))] == ids
    assert view.digests.blob == b"".join(hashlib.sha256(m).digest() for m in messages)
    assert HexIds.join([view, view[1:]]) == ids + ids[1:]


def test_hex_ids_refuse_what_is_not_a_digest() -> None:
    with pytest.raises(ValueError, match="not hex"):
        HexIds.of(["zz" * 32])
    with pytest.raises(ValueError, match="want 32"):
        HexIds.of(["ab" * 31])
    with pytest.raises(ValueError, match="32-byte digests"):
        HexIds(FixedRuns(bytes(64), 64))


@given(tails, slices)
def test_message_runs_are_head_plus_tail(
    parts: list[bytes], bounds: tuple[int | None, int | None]
) -> None:
    messages = [HEAD + t for t in parts]
    run = MessageRuns.of(HEAD, messages)
    assert list(run) == messages and run == messages and len(run) == len(messages)
    assert [run[i] for i in range(-len(messages), len(messages))] == messages + messages
    assert run.tails == b"".join(parts)
    assert list(run[slice(*bounds)]) == messages[slice(*bounds)]
    assert list(run[::3]) == messages[::3]
    assert MessageRuns.of(HEAD, run) is run
    assert MessageRuns.join([run, run[1:]]) == messages + messages[1:]
    for i, tail in enumerate(parts):
        start, end = run.tail_bounds(i)
        assert run.tails[start:end] == tail


def test_message_runs_refuse_what_they_cannot_hold() -> None:
    with pytest.raises(ValueError, match="message 1 does not start with the run's head"):
        MessageRuns.of(HEAD, [HEAD + b"x", b"other" + b"x"])
    with pytest.raises(ValueError, match="add up to 5 bytes; the tails hold 4"):
        MessageRuns(HEAD, (5).to_bytes(4, "big"), b"abcd")
    with pytest.raises(ValueError, match="not whole u32s"):
        MessageRuns(HEAD, b"\x00\x00\x01", b"a")
    with pytest.raises(ValueError, match="different heads"):
        MessageRuns.join([MessageRuns.of(HEAD, []), MessageRuns.of(b"x", [])])
