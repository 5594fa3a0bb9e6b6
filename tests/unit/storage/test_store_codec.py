"""The row layout shared by the SQL stores: auth blobs, cursors, the fast message encoder."""

from __future__ import annotations

import hashlib
import math
import struct
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from veriot.core.canonical import device_prefix, reading_message, reading_message_uncached
from veriot.core.columns import FixedRuns, HexIds
from veriot.core.errors import InputError, StoreError
from veriot.core.types import BatchAuth, Reading, Record, Segment, SignedReading
from veriot.ledger.segment import segment_readings
from veriot.storage import codec
from veriot.storage.testing import SEGMENT_KINDS, make_reading, make_segment

DID = "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK"


def test_auth_blobs_round_trip() -> None:
    own = SignedReading(make_reading("d", 0, 0).signed.reading, signature=b"\x01" * 64)
    batch = BatchAuth(b"\x02" * 32, 7, 3, (b"\x03" * 32, b"\x04" * 32, b"\x05" * 32), b"\x06" * 64)
    batched = SignedReading(own.reading, batch=batch)
    no_path = SignedReading(own.reading, batch=BatchAuth(b"\x02" * 32, 1, 0, (), b"\x06" * 64))
    for signed in (own, batched, no_path):
        assert codec.decode_auth(codec.encode_auth(signed)) == (signed.signature, signed.batch)


@pytest.mark.parametrize(
    "blob", [b"", b"\x03abc", b"\x02" + bytes(10), b"\x02" + bytes(40) + b"\x00\x05"]
)
def test_a_corrupt_auth_blob_raises_store_error(blob: bytes) -> None:
    with pytest.raises(StoreError):
        codec.decode_auth(blob)


def test_an_auth_needs_exactly_one_kind() -> None:
    reading = make_reading("d", 0, 0).signed.reading
    batch = BatchAuth(b"\x02" * 32, 1, 0, (), b"\x06" * 64)
    for signed in (
        SignedReading(reading),
        SignedReading(reading, signature=bytes(64), batch=batch),
        SignedReading(reading, batch=BatchAuth(b"\x02" * 31, 1, 0, (), b"")),
        SignedReading(reading, batch=BatchAuth(b"\x02" * 32, 1, 0, (b"\x01",), b"")),
    ):
        with pytest.raises(InputError):
            codec.encode_auth(signed)


@given(st.integers(min_value=0, max_value=2**63 - 1))
def test_cursors_round_trip(index: int) -> None:
    assert codec.decode_cursor(codec.encode_cursor(index)) == index


@pytest.mark.parametrize(
    "cursor", ["", "=", "A", "AAAAAAAAAA", "AAAAAAAAAAA=", "AAAAAAAAAAAB", "__________8", "é"]
)
def test_cursors_not_made_by_the_store_are_refused(cursor: str) -> None:
    with pytest.raises(InputError):
        codec.decode_cursor(cursor)


def test_reading_ids_are_lowercase_hex_sha256() -> None:
    stored = make_reading("d", 0, 0)
    assert codec.is_reading_id(stored.id)
    assert not codec.is_reading_id(stored.id.upper())
    assert not codec.is_reading_id(stored.id[:-1])


def test_rows_rebuild_the_stored_reading() -> None:
    for stored in (make_reading("d", 5, 9, gap=True), make_reading("d", 6, 10, batch=True)):
        row = codec.reading_values(stored, device_id=3)
        index, _, device_id, seq, message, auth, leaf_hash, received_at, first, names, gap = row
        assert (device_id, seq, first) == (
            3,
            stored.signed.reading.seq,
            stored.signed.reading.records[0].time,
        )
        assert names == " temp hum pres "
        assert codec.rebuild_reading(index, message, auth, leaf_hash, received_at, gap) == stored


names = st.sampled_from(["temp", "hum", "a", "x.y/z", "bad name", "", "t" * 64, "t" * 65, "é"])
units = st.sampled_from(["", "Cel", "%RH", "m s", "u" * 16, "u" * 17, "\ud800"])
floats = st.one_of(st.floats(), st.sampled_from([0.0, -0.0, 1e-300, 1.7e9]))
records = st.builds(Record, name=names, value=floats, time=floats, unit=units)
readings = st.builds(
    Reading,
    device=st.sampled_from(["did:key:z6Mk", "", "d" * 128, "d" * 129, "dé", "\udfff"]),
    seq=st.one_of(st.integers(min_value=-1, max_value=2**64), st.just(2**63 - 1)),
    records=st.lists(records, min_size=0, max_size=4).map(tuple),
)


@given(readings)
def test_the_cached_encoder_agrees_with_the_uncached_one(reading: Reading) -> None:
    try:
        expected: bytes | str = reading_message_uncached(reading)
    except InputError as exc:
        expected = f"InputError: {exc}"
    try:
        got: bytes | str = reading_message(reading)
    except InputError as exc:
        got = f"InputError: {exc}"
    assert got == expected


def test_the_cached_encoder_matches_for_a_large_reading() -> None:
    records = tuple(Record(f"n{i}", i * math.pi, 1e9 + i, "Cel") for i in range(256))
    reading = Reading("did:key:z6Mk", 2**63 - 1, records)
    assert reading_message(reading) == reading_message_uncached(reading)


# -- segments ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", SEGMENT_KINDS)
def test_segment_bodies_round_trip(kind: str) -> None:
    segment = make_segment("did:key:z6Mk", 3, 17, 4, kind=kind, gaps=(0, 3), received_at=9.5)
    body = codec.encode_segment_body(segment)
    assert codec.decode_segment(17, 9.5, body) == segment
    for start, end in ((1, 3), (0, 1), (3, 4), (0, 4)):
        part = codec.decode_segment(17, 9.5, body, start, end)
        assert segment_readings(part) == segment_readings(segment)[start:end]
    for start, end in ((2, 2), (3, 1), (0, 5), (-1, 2)):
        with pytest.raises(StoreError, match=f"asked for {start}..{end}"):
            codec.decode_segment(17, 9.5, body, start, end)
    # A range is decoded from a body that is checked whole.
    with pytest.raises(StoreError, match="trailing"):
        codec.decode_segment(17, 9.5, body + b"\x00", 0, 1)


def _format_1_body(segment: Segment) -> bytes:
    """A segment body as format 1 laid it out (each message whole, then the log leaf
    hashes), written from the layout in codec's docstring: what older stores hold."""
    n = len(segment.messages)
    if segment.seal is not None:
        seal = segment.seal
        kind = codec.SEG_SEALED
        auth = b"".join(
            (
                seal.root,
                struct.pack(">I", seal.size),
                *seal.leaves,
                struct.pack(">H", len(seal.signature)),
                seal.signature,
                struct.pack(f">{n}I", *segment.positions),
            )
        )
    elif segment.batch_auths:
        kind = codec.SEG_BATCH_AUTHS
        auth = b"".join(
            struct.pack(">32sIIH", b.root, b.size, b.index, len(b.path))
            + b"".join(b.path)
            + struct.pack(">H", len(b.signature))
            + b.signature
            for b in segment.batch_auths
        )
    else:
        kind = codec.SEG_SIGNATURES
        sigs = segment.signatures
        auth = struct.pack(f">{n}H", *map(len, sigs)) + b"".join(sigs)
    return b"".join(
        (
            struct.pack(">BBI", 1, kind, n),
            struct.pack(f">{n}I", *map(len, segment.messages)),
            *segment.messages,
            *segment.leaf_hashes,
            bytes(segment.gaps),
            auth,
        )
    )


@pytest.mark.parametrize("kind", SEGMENT_KINDS)
def test_bodies_of_the_first_format_read_back_the_same(kind: str) -> None:
    segment = make_segment("did:key:z6Mk", 3, 17, 4, kind=kind, gaps=(1,), received_at=9.5)
    old = _format_1_body(segment)
    assert codec.decode_segment(17, 9.5, old) == segment
    assert codec.decode_segment(17, 9.5, old, 2, 4) == codec.decode_segment(
        17, 9.5, codec.encode_segment_body(segment), 2, 4
    )


@pytest.mark.parametrize("kind", SEGMENT_KINDS)
def test_a_body_holds_the_device_once_and_no_leaf_hashes(kind: str) -> None:
    segment = make_segment(DID, 3, 17, 100, kind=kind)
    body = codec.encode_segment_body(segment)
    head = device_prefix(DID)
    assert body.count(head) == 1
    assert not any(leaf in body for leaf in segment.leaf_hashes)
    # what is left per reading: its message after the device, length, gap flag and auth
    saved = len(_format_1_body(segment)) - len(body)
    assert saved == 100 * (len(head) + 32) - (2 + len(head))
    decoded = codec.decode_segment(17, segment.received_at, body)
    assert list(decoded.leaf_hashes) == list(segment.leaf_hashes)


@pytest.mark.parametrize("kind", SEGMENT_KINDS)
def test_a_bodys_seqs_are_read_without_decoding_it(kind: str) -> None:
    positions = (0, 2, 5) if kind == "sealed" else None
    segment = make_segment(DID, 7, 30, 3, kind=kind, positions=positions, batch_size=9)
    seqs = [7, 9, 12] if kind == "sealed" else [7, 8, 9]
    assert list(segment.seqs) == seqs
    assert codec.segment_seqs(codec.encode_segment_body(segment)) == seqs
    assert codec.segment_seqs(_format_1_body(segment)) == seqs
    body = codec.encode_segment_body(segment)
    first_tail = 6 + 2 + len(device_prefix(DID)) + 3 + 4 * 3
    for short in (b"", body[:5], body[: first_tail + 4], b"\x03" + body[1:]):
        with pytest.raises(StoreError):
            codec.segment_seqs(short)


def test_segment_rows_hold_the_query_columns() -> None:
    segment = make_segment("did:key:z6Mk", 3, 17, 4, kind="sealed", names=("b", "a"))
    first, count, device_id, lo, hi, t0, t1, names, received_at, _ = codec.segment_values(
        segment, 5
    )
    assert (first, count, device_id, lo, hi) == (17, 4, 5, 3, 6)
    assert (t0, t1) == (segment.readings[0].records[0].time, segment.readings[3].records[0].time)
    assert names == " a b " and received_at == segment.received_at
    assert codec.id_values(segment) == [
        ((17 + i) >> codec.ID_EPOCH_BITS, codec.id_key(rid), 17 + i)
        for i, rid in enumerate(segment.ids)
    ]


@given(st.lists(st.binary(max_size=8), min_size=1, max_size=20), st.integers(0, 2**40))
def test_id_rows_read_from_digests_are_those_of_the_hex_ids(
    messages: list[bytes], first: int
) -> None:
    ids = [hashlib.sha256(m).hexdigest() for m in messages]
    assert codec.id_rows(first, HexIds.of(ids)) == codec.id_rows(first, ids)
    assert [key for _, key, _ in codec.id_rows(first, ids)] == [codec.id_key(i) for i in ids]


@pytest.mark.parametrize("kind", SEGMENT_KINDS)
def test_a_corrupt_segment_body_raises_store_error(kind: str) -> None:
    body = codec.encode_segment_body(make_segment("did:key:z6Mk", 0, 0, 3, kind=kind))
    bad = [
        b"",
        body[:5],
        body[:-1],
        body + b"\x00",
        b"\x03" + body[1:],  # another format
        b"\x01" + body[1:],  # read as the first format
        body[:1] + b"\x09" + body[2:],  # another auth kind
        body[:2] + b"\x00\x00\x00\x00" + body[6:],  # no readings
        body[:2] + b"\x00\x00\x00\x09" + body[6:],  # more readings than it holds
    ]
    for blob in bad:
        with pytest.raises(StoreError):
            codec.decode_segment(0, 0.0, blob)
    # A message that no longer parses is caught when the segment is rebuilt.
    mangled = body[:20] + b"\xff" + body[21:]
    with pytest.raises(StoreError):
        codec.decode_segment(0, 0.0, mangled)


def test_a_body_is_not_encoded_for_a_message_of_another_device() -> None:
    segment = make_segment(DID, 0, 40, 3)
    stranger = make_segment("did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp", 0, 0, 1)
    mixed = replace(segment, messages=(*segment.messages[:2], stranger.messages[0]))
    with pytest.raises(InputError, match=r"another device \(at index 42\)"):
        codec.encode_segment_body(mixed)


def test_a_recent_ids_row_keeps_each_ids_first_8_bytes_however_the_ids_are_held() -> None:
    segment = make_segment("d", 0, 40, 5)
    digests = b"".join(bytes.fromhex(i) for i in segment.ids)
    columnar = replace(segment, ids=HexIds(FixedRuns(digests, 32)))
    [(first, keys)] = codec.recent_id_rows([segment])
    assert [(first, keys)] == codec.recent_id_rows([columnar])
    assert first == 40 and keys == b"".join(bytes.fromhex(i[:16]) for i in segment.ids)
    # The reading_ids rows it stands for are those the segment would have had.
    assert codec.recent_id_entries(first, keys) == codec.id_values(segment)
    assert codec.recent_id_entries(first, keys + b"\x01\x02") == codec.id_values(segment)


def test_an_append_has_one_recent_ids_row_per_run_of_consecutive_readings() -> None:
    a = make_segment("a", 0, 10, 3)
    b = make_segment("b", 0, 13, 2)
    c = make_segment("c", 0, 16, 4)  # index 15 is an alert
    rows = codec.recent_id_rows([c, b, a])
    assert [(first, len(keys) // 8) for first, keys in rows] == [(10, 5), (16, 4)]
    entries = [e for first, keys in rows for e in codec.recent_id_entries(first, keys)]
    assert entries == codec.id_values(a) + codec.id_values(b) + codec.id_values(c)
    # Taken for a range of log indices, as the audit reads them.
    assert (
        codec.recent_id_entries(*rows[0], 12, 14) == codec.id_values(a)[2:] + codec.id_values(b)[:1]
    )
    assert codec.recent_id_entries(*rows[0], 15, 30) == []
    assert codec.recent_id_rows([]) == []


def test_a_key_is_matched_only_at_a_key_boundary_of_a_recent_ids_row() -> None:
    keys = bytes.fromhex("00000000000000aabb0000000000000000000000000000aa")
    # Bytes 7..14 read aa bb 00 .. 00 across two keys: not a key of this row.
    assert codec.recent_id_matches(100, keys, bytes.fromhex("aabb000000000000")) == []
    assert codec.recent_id_matches(100, keys, bytes.fromhex("00000000000000aa")) == [100, 102]
    assert codec.recent_id_matches(100, keys, bytes.fromhex("bb00000000000000")) == [101]
    assert codec.recent_id_matches(100, b"", bytes(8)) == []


@pytest.mark.parametrize(
    ("old", "new", "sealed"),
    [
        (0, 5, None),
        (5, (1 << 14) - 1, None),
        (5, 1 << 14, 1 << 14),  # the append completes the first epoch
        ((1 << 14) - 1, (1 << 14) + 3, 1 << 14),
        (1 << 14, (1 << 14) + 1, None),  # sealed by the append that reached 2**14
        (10, (3 << 14) + 7, 3 << 14),  # three at once: everything before the last end
        (7, 7, None),
    ],
)
def test_ids_are_sealed_when_an_append_passes_the_end_of_an_epoch(
    old: int, new: int, sealed: int | None
) -> None:
    assert codec.ids_to_seal(old, new) == sealed


def test_sealing_chunks_an_epochs_ids_by_first_byte_and_keeps_what_passes_its_end() -> None:
    coarse = 1 << codec.ID_EPOCH_BITS
    a = make_segment("a", 0, coarse - 200, 100)
    b = make_segment("b", 0, coarse - 100, 150)  # reaches 50 past the end
    rows = [*codec.recent_id_rows([b]), *codec.recent_id_rows([a])]  # in any order
    chunks, rest = codec.seal_recent_ids(rows, coarse)
    assert rest == [(coarse, codec.recent_id_rows([b])[0][1][100 * 8 :])]
    buckets = [bucket for _, bucket, _, _ in chunks]
    assert buckets == sorted(set(buckets))  # one chunk per bucket
    entries = []
    for epoch, bucket, keys, offsets in chunks:
        assert epoch == 0
        assert all(keys[i] == bucket for i in range(0, len(keys), 8))
        mine = codec.chunk_entries(epoch, keys, offsets)
        assert [index for _, _, index in mine] == sorted(index for _, _, index in mine)
        entries += mine
    assert sorted(entries) == sorted(codec.id_values(a) + codec.id_values(b)[:100])
    # Each reading below the end is matched in its bucket's chunk, at its log index.
    by_bucket = {bucket: (epoch, keys, offsets) for epoch, bucket, keys, offsets in chunks}
    for segment in (a, b):
        for i, reading_id in enumerate(segment.ids[:100]):
            key = codec.id_key_bytes(reading_id)
            epoch, keys, offsets = by_bucket[key[0]]
            assert codec.chunk_matches(epoch, keys, offsets, key) == [segment.first_index + i]


def test_a_seal_spanning_epochs_chunks_each_epoch_apart() -> None:
    coarse = 1 << codec.ID_EPOCH_BITS
    keys = bytes.fromhex("7f00000000000000") * 3 + bytes.fromhex("7f00000000000001")
    chunks, rest = codec.seal_recent_ids([(coarse - 2, keys)], 2 * coarse)
    assert rest == []
    assert [(e, b, len(k) // 8, o) for e, b, k, o in chunks] == [
        (0, 0x7F, 2, struct.pack(">2H", coarse - 2, coarse - 1)),
        (1, 0x7F, 2, struct.pack(">2H", 0, 1)),
    ]
    (first, _, first_keys, first_offsets), (second, _, second_keys, second_offsets) = chunks
    same = keys[:8]
    assert codec.chunk_matches(first, first_keys, first_offsets, same) == [coarse - 2, coarse - 1]
    assert codec.chunk_matches(second, second_keys, second_offsets, same) == [coarse]


def test_a_misaligned_key_in_a_chunk_is_not_a_match() -> None:
    keys = bytes.fromhex("00000000000000aabb00000000000000")
    offsets = bytes.fromhex("00030009")
    assert codec.chunk_matches(2, keys, offsets, bytes.fromhex("aabb000000000000")) == []
    assert codec.chunk_matches(2, keys, offsets, keys[8:]) == [(2 << codec.ID_EPOCH_BITS) + 9]
    # A chunk whose offsets were cut short matches only the ids it still has offsets for.
    assert codec.chunk_matches(2, keys, offsets[:2], keys[8:]) == []
    assert codec.chunk_entries(2, keys, offsets[:3]) == codec.chunk_entries(
        2, keys[:8], offsets[:2]
    )


def test_a_chunks_entries_can_be_taken_for_a_range_of_log_indices() -> None:
    keys = b"".join(i.to_bytes(8, "big") for i in (9, 3, 7, 5))
    offsets = struct.pack(">4H", 2, 6, 7, 300)
    every = codec.chunk_entries(1, keys, offsets)
    base = 1 << codec.ID_EPOCH_BITS
    assert [index - base for _, _, index in every] == [2, 6, 7, 300]
    assert [key + (1 << 63) for _, key, _ in every] == [9, 3, 7, 5]
    assert codec.chunk_entries(1, keys, offsets, base + 6, base + 300) == every[1:3]
    assert codec.chunk_entries(1, keys, offsets, base + 301) == []
    assert codec.chunk_entries(1, keys, offsets, 0, base + 3) == every[:1]
