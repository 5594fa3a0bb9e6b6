"""Segments <-> stored readings: segment_readings rebuilds exactly what segment_of cut,
sealed members get the paths of their batch tree, and inconsistent segments are refused."""

from __future__ import annotations

from dataclasses import replace
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from veriot.core.canonical import device_prefix, reading_leaf
from veriot.core.errors import InputError
from veriot.core.types import BatchSeal, StoredReading
from veriot.ledger.batch import batch_root_from_path
from veriot.ledger.hashing import leaf_hash
from veriot.ledger.segment import check_segment, message_columns, segment_of, segment_readings
from veriot.storage.testing import SEGMENT_KINDS, make_reading, make_segment

DID = "did:key:z6Mktest0001"
OTHER = "did:key:z6Mktest0002"


@pytest.mark.parametrize("kind", SEGMENT_KINDS)
def test_readings_of_a_segment_are_what_it_holds(kind: str) -> None:
    segment = make_segment(DID, 7, 40, 5, kind=kind, gaps=(1, 4))
    readings = segment_readings(segment)
    assert [r.index for r in readings] == list(range(40, 45))
    assert [r.gap for r in readings] == [False, True, False, False, True]
    for i, stored in enumerate(readings):
        assert stored.id == segment.ids[i] and stored.message == segment.messages[i]
        assert stored.signed.reading == segment.readings[i]
        assert stored.received_at == segment.received_at
        assert stored.leaf_hash == leaf_hash(reading_leaf(stored.signed, stored.message))
    # Cut again, the readings give a segment that rebuilds them.
    assert [r for s in segment_of(readings) for r in segment_readings(s)] == readings


def test_sealed_members_carry_paths_to_the_seal_root() -> None:
    segment = make_segment(DID, 0, 3, 3, kind="sealed", positions=(1, 4, 6), batch_size=7)
    assert segment.seal is not None
    for stored, position in zip(segment_readings(segment), (1, 4, 6), strict=True):
        batch = stored.signed.batch
        assert batch is not None and stored.signed.signature is None
        assert (batch.root, batch.size, batch.index) == (segment.seal.root, 7, position)
        assert batch.signature == segment.seal.signature
        leaf = segment.seal.leaves[position]
        assert batch_root_from_path(leaf, position, 7, batch.path) == segment.seal.root


def stored_run(spec: list[tuple[int, bool, bool]]) -> list[StoredReading]:
    """Readings at indices 0.. from (device number, batch?, same receive time?) triples."""
    out = []
    for i, (device, batch, same_time) in enumerate(spec):
        did = (DID, OTHER)[device]
        at = 5.0 if same_time else 100.0 + i
        out.append(make_reading(did, i, i, batch=batch, gap=i % 3 == 0, received_at=at))
    return out


@given(st.lists(st.tuples(st.integers(0, 1), st.booleans(), st.booleans()), max_size=30))
def test_segment_of_round_trips_any_readings(spec: list[tuple[int, bool, bool]]) -> None:
    readings = stored_run(spec)
    segments = segment_of(list(reversed(readings)))  # any order in, index order out
    assert [r for s in segments for r in segment_readings(s)] == readings
    for segment in segments:
        check_segment(segment)
        devices = {r.device for r in segment.readings}
        assert devices == {segment.device}
    for before, after in pairwise(segments):
        assert before.end_index == after.first_index  # consecutive input, so no holes
        assert (before.device, bool(before.signatures), before.received_at) != (
            after.device,
            bool(after.signatures),
            after.received_at,
        )


def test_segment_of_cuts_at_holes_in_the_indices() -> None:
    readings = [make_reading(DID, i, index, received_at=1.0) for i, index in enumerate((0, 1, 3))]
    assert [(s.first_index, len(s)) for s in segment_of(readings)] == [(0, 2), (3, 1)]
    assert segment_of([]) == []


def test_segment_of_refuses_a_reading_without_exactly_one_auth() -> None:
    good = make_reading(DID, 0, 0)
    both = replace(
        good, signed=replace(good.signed, batch=make_reading(DID, 0, 0, batch=True).signed.batch)
    )
    neither = replace(good, signed=replace(good.signed, signature=None))
    for bad in (both, neither):
        with pytest.raises(InputError):
            segment_of([bad])


@pytest.mark.parametrize(
    ("kind", "change"),
    [
        ("signatures", {"messages": ()}),
        ("signatures", {"gaps": (False,)}),
        ("signatures", {"ids": ("x",) * 4}),
        ("signatures", {"leaf_hashes": ()}),
        ("signatures", {"readings": ()}),
        ("signatures", {"signatures": (b"s",)}),
        ("signatures", {"signatures": ()}),
        ("signatures", {"positions": (0, 1, 2)}),
        ("batch_auths", {"signatures": (b"s",) * 3}),
        ("sealed", {"signatures": (b"s",) * 3}),
        ("sealed", {"positions": (0, 1)}),
        ("sealed", {"positions": (0, 1, 3)}),
        ("sealed", {"positions": (-1, 1, 2)}),
        ("sealed", {"seal": BatchSeal(bytes(32), b"", (bytes(32), b"short", bytes(32)))}),
        ("sealed", {"seal": BatchSeal(bytes(32), b"", ())}),
        ("signatures", {"device": OTHER}),
        ("signatures", {"seqs": (1, 2)}),
        ("signatures", {"times": ()}),
        ("signatures", {"names": ()}),
        # The columns the store indexes must be those of the messages.
        ("signatures", {"seqs": (0, 1, 5)}),
        ("sealed", {"seqs": (1, 2, 3)}),
        ("signatures", {"times": (0.0, 0.0, 0.0)}),
        ("signatures", {"names": ("hum", "temp")}),
        ("signatures", {"names": ("hum", "pres", "temp", "wind")}),
        ("signatures", {"names": ("hum", "hum", "pres", "temp")}),
    ],
)
def test_an_inconsistent_segment_is_refused(kind: str, change: dict[str, object]) -> None:
    segment = replace(make_segment(DID, 0, 0, 3, kind=kind), **change)  # type: ignore[arg-type]
    with pytest.raises(InputError):
        segment_readings(segment)


def test_a_segment_holding_a_message_of_another_device_is_refused() -> None:
    segment = make_segment(DID, 0, 0, 3)
    stranger = make_segment(OTHER, 0, 0, 1).messages[0]
    mixed = replace(segment, messages=(segment.messages[0], stranger, segment.messages[2]))
    with pytest.raises(InputError, match="another device"):
        check_segment(mixed)


def test_a_segment_whose_columns_disagree_with_its_messages_says_where() -> None:
    segment = make_segment(DID, 10, 0, 3)
    with pytest.raises(InputError, match=r"index 1 has seq 99 .* its message has seq 11"):
        check_segment(replace(segment, seqs=(10, 99, 12)))
    with pytest.raises(InputError, match=r"missing \['pres'\]"):
        check_segment(replace(segment, names=("hum", "temp")))
    # Where the columns were derived with the messages (a stored row being read, the
    # sequencer's appends), the check can be left out.
    check_segment(replace(segment, seqs=(10, 99, 12)), columns=False)


@pytest.mark.parametrize("cut", [1, 8, 20])
def test_a_segment_holding_a_truncated_message_is_refused(cut: int) -> None:
    segment = make_segment(DID, 0, 0, 3)
    short = segment.messages[1][:-cut]
    with pytest.raises(InputError, match="not a canonical reading message"):
        check_segment(replace(segment, messages=(segment.messages[0], short, segment.messages[2])))


@pytest.mark.parametrize("kind", SEGMENT_KINDS)
def test_message_columns_are_the_columns_of_the_readings(kind: str) -> None:
    segment = make_segment(DID, 7, 30, 4, kind=kind, names=("temp", "wind", "hum"))
    at = len(device_prefix(DID))
    assert message_columns(30, segment.messages, at) == (
        segment.seqs,
        segment.times,
        segment.names,
    )
    with pytest.raises(InputError, match="at index 32"):
        message_columns(30, (*segment.messages[:2], segment.messages[2][:-1]), at)
