"""The store port's conformance suite: every adapter (memory, SQLite, PostgreSQL) must
behave the same for every method of `veriot.ports.Store`."""

from __future__ import annotations

import hashlib
import threading
from dataclasses import replace

import pytest

from tests.conformance.conftest import Backend
from veriot.ai.alerts import Alert, alert_leaf
from veriot.core.canonical import reading_leaf
from veriot.core.errors import (
    ConflictError,
    DeviceExistsError,
    InputError,
    MissingNodeError,
    StoreError,
    UnknownDeviceError,
)
from veriot.core.types import (
    MAX_SEQ,
    ApiKey,
    Checkpoint,
    NodeId,
    Reading,
    ReadingQuery,
    Record,
    SecurityEvent,
    SecurityEventKind,
    Segment,
    SignedReading,
    StoredReading,
)
from veriot.ledger.segment import segment_readings
from veriot.ports import AlertQuery, AppendBatch, Store
from veriot.storage import codec, sql
from veriot.storage.migrations import load_migrations
from veriot.storage.testing import (
    BASE_TIME,
    SEGMENT_KINDS,
    completed_nodes,
    make_alert,
    make_batch,
    make_device,
    make_mixed_batch,
    make_reading,
    make_segment,
    readings_for,
)

A = make_device(1)
B = make_device(2)


def registered(store: Store, *devices: int) -> list[str]:
    dids = []
    for n in devices:
        device = make_device(n)
        store.add_device(device)
        dids.append(device.did)
    return dids


def fill(store: Store, per_device: int = 5, devices: tuple[int, ...] = (1, 2)) -> list[str]:
    """Registers devices and appends `per_device` readings of each, taking turns."""
    dids = registered(store, *devices)
    store.append(make_batch(readings_for(dids, per_device)))
    return dids


def all_pages(store: Store, query: ReadingQuery) -> list[StoredReading]:
    items: list[StoredReading] = []
    while True:
        page = store.query_readings(query)
        items.extend(page.items)
        if page.next_cursor is None:
            return items
        assert page.items, "a page with a next cursor must not be empty"
        query = replace(query, cursor=page.next_cursor)


# -- devices -------------------------------------------------------------------------


def test_devices_are_added_listed_and_found(store: Store) -> None:
    store.add_device(B)
    store.add_device(A)
    assert store.get_device(A.did) == A
    assert store.get_device(A.did).metadata == A.metadata  # type: ignore[union-attr]
    assert store.get_device("did:key:nobody") is None
    assert [d.did for d in store.list_devices()] == [A.did, B.did]


def test_adding_a_device_twice_raises_and_keeps_the_first(store: Store) -> None:
    store.add_device(A)
    with pytest.raises(DeviceExistsError) as caught:
        store.add_device(replace(A, name="impostor"))
    assert caught.value.did == A.did
    assert store.get_device(A.did) == A


def test_revocation_keeps_the_first_time(store: Store) -> None:
    store.add_device(A)
    first = store.revoke_device(A.did, BASE_TIME + 10)
    again = store.revoke_device(A.did, BASE_TIME + 99)
    assert first.revoked_at == again.revoked_at == BASE_TIME + 10
    stored = store.get_device(A.did)
    assert stored is not None and stored.revoked_at == BASE_TIME + 10
    assert not stored.active_at(BASE_TIME + 10)


def test_revoking_or_rotating_an_unknown_device_raises(store: Store) -> None:
    with pytest.raises(UnknownDeviceError):
        store.revoke_device("did:key:nobody", BASE_TIME)
    with pytest.raises(UnknownDeviceError):
        store.rotate_key("did:key:nobody", bytes(32))


def test_rotate_key_replaces_the_key_only(store: Store) -> None:
    store.add_device(A)
    rotated = store.rotate_key(A.did, b"\x07" * 32)
    assert rotated == replace(A, public_key=b"\x07" * 32)
    assert store.get_device(A.did) == rotated


# -- appending and reading back ------------------------------------------------------


def test_appended_readings_come_back_exactly(store: Store) -> None:
    (did,) = registered(store, 1)
    own = make_reading(did, 0, 0)
    batched = make_reading(did, 1, 1, batch=True, gap=True)
    odd = make_reading(did, MAX_SEQ, 2, names=("a", "b/c:d"), time=0.1, received_at=1e-9)
    store.append(make_batch([own, batched, odd]))
    assert store.log_size() == 3
    for stored in (own, batched, odd):
        assert store.get_reading(stored.id) == stored
        assert store.get_reading_at(stored.index) == stored
        assert store.find_seqs(did, [stored.signed.reading.seq]) == {
            stored.signed.reading.seq: stored
        }
    assert store.get_reading("0" * 64) is None
    assert store.get_reading("not an id") is None
    assert store.get_reading_at(3) is None
    assert store.find_seqs(did, [2]) == {}
    assert store.find_seqs("did:key:nobody", [0]) == {}


def test_an_empty_store(store: Store) -> None:
    assert store.log_size() == 0
    assert store.last_seqs() == {}
    assert list(store.iter_readings()) == []
    assert store.leaf_data(0, 10) == []
    assert store.query_readings(ReadingQuery()).items == []
    assert store.latest_checkpoint() is None
    assert store.list_checkpoints() == []
    assert store.list_events() == []
    with pytest.raises(MissingNodeError):
        store.get_nodes([NodeId(0, 0)])


def test_leaf_data_rebuilds_readings_and_alerts_in_index_order(store: Store) -> None:
    (did,) = registered(store, 1)
    first = make_reading(did, 0, 0)
    second = make_reading(did, 1, 2, batch=True)
    alerts = [make_alert(1), make_alert(3)]
    store.append(make_batch([first, second], alerts=alerts))
    assert store.log_size() == 4
    expected = [
        (0, reading_leaf(first.signed)),
        alerts[0],
        (2, reading_leaf(second.signed)),
        alerts[1],
    ]
    assert store.leaf_data(0, 4) == expected
    assert store.leaf_data(1, 3) == expected[1:3]
    assert store.leaf_data(4, 9) == []
    assert store.get_reading_at(1) is None  # an alert is not a reading
    list_alerts = getattr(store, "list_alert_leaves", None)
    assert list_alerts is not None, "every adapter exposes list_alert_leaves"
    assert list_alerts(0, 4) == alerts
    assert list_alerts(2, 3) == []


def test_nodes_come_back_in_the_order_asked(store: Store) -> None:
    dids = fill(store, per_device=50)  # 100 leaves: levels 0..6
    expected = dict(completed_nodes(0, 100))
    ids = [NodeId(6, 0), NodeId(0, 99), NodeId(0, 0), NodeId(3, 11), NodeId(0, 0)]
    assert store.get_nodes(ids) == [expected[i] for i in ids]
    assert store.get_nodes([]) == []
    store.append(make_batch(readings_for(dids, 14, start_index=100, first_seq=50)))
    assert store.get_nodes([NodeId(7, 0)]) == [dict(completed_nodes(100, 128))[NodeId(7, 0)]]


@pytest.mark.parametrize(
    "missing", [NodeId(0, 100), NodeId(2, 25), NodeId(7, 0), NodeId(127, 0), NodeId(200, 0)]
)
def test_a_missing_node_raises_with_its_id(store: Store, missing: NodeId) -> None:
    fill(store, per_device=50)
    with pytest.raises(MissingNodeError) as caught:
        store.get_nodes([NodeId(0, 1), missing])
    assert (caught.value.level, caught.value.index) == (missing.level, missing.index)


def test_batches_continue_the_log(store: Store) -> None:
    dids = registered(store, 1, 2)
    for start in range(0, 60, 12):
        readings = readings_for(dids, 6, start_index=start, first_seq=start // 2)
        store.append(make_batch(readings[:-1], alerts=[make_alert(start + 11)]))
    assert store.log_size() == 60
    expected = dict(completed_nodes(0, 60))
    assert store.get_nodes(list(expected)) == list(expected.values())
    assert [r.index for r in store.iter_readings()] == [i for i in range(60) if i % 12 != 11]


def test_a_batch_of_events_only_is_appended(store: Store) -> None:
    event = SecurityEvent(A.did, SecurityEventKind.UNKNOWN_DEVICE, BASE_TIME)
    store.append(AppendBatch(events=[event]))
    assert store.log_size() == 0
    assert store.list_events() == [event]


# -- atomicity -----------------------------------------------------------------------


def assert_unchanged(store: Store, size: int, events: int) -> None:
    assert store.log_size() == size
    assert len(store.list_events()) == events
    with pytest.raises(MissingNodeError):
        store.get_nodes([NodeId(0, size)])
    assert store.get_reading_at(size) is None


def test_a_duplicate_seq_fails_the_whole_batch(store: Store) -> None:
    dids = fill(store, per_device=3)
    events = [SecurityEvent(dids[0], SecurityEventKind.SEQUENCE_GAP, BASE_TIME, 9)]
    fresh = [make_reading(dids[0], 3 + i, 6 + i) for i in range(4)]
    clash = make_reading(dids[1], 2, 10)  # seq 2 of device 2 is stored
    with pytest.raises(StoreError) as caught:
        store.append(make_batch([*fresh, clash], events=events))
    assert dids[1] in str(caught.value) and "sequence number 2" in str(caught.value)
    assert_unchanged(store, size=6, events=0)
    assert store.find_seqs(dids[0], [3]) == {}
    assert store.get_reading(fresh[0].id) is None
    assert store.last_seqs() == {dids[0]: 2, dids[1]: 2}
    store.append(make_batch(fresh, events=events))  # the store is still usable
    assert store.log_size() == 10


def test_a_seq_twice_in_one_batch_fails_it(store: Store) -> None:
    (did,) = registered(store, 1)
    batch = make_batch([make_reading(did, 0, 0), make_reading(did, 0, 1)])
    with pytest.raises(StoreError):
        store.append(batch)
    assert_unchanged(store, size=0, events=0)


def test_a_batch_that_does_not_continue_the_log_fails(store: Store) -> None:
    dids = fill(store, per_device=2)
    for start in (3, 5):  # overlapping, leaving a gap
        with pytest.raises(StoreError) as caught:
            store.append(make_batch([make_reading(dids[0], 10, start)]))
        assert "want 4" in str(caught.value)
    with pytest.raises(StoreError):  # a reading and an alert at the same index
        store.append(make_batch([make_reading(dids[0], 10, 4)], alerts=[make_alert(4)]))
    assert_unchanged(store, size=4, events=0)


def test_readings_of_an_unregistered_device_fail_the_batch(store: Store) -> None:
    (did,) = registered(store, 1)
    batch = make_batch([make_reading(did, 0, 0), make_reading("did:key:nobody", 0, 1)])
    with pytest.raises(StoreError) as caught:
        store.append(batch)
    assert "did:key:nobody" in str(caught.value)
    assert_unchanged(store, size=0, events=0)


def test_nodes_that_are_stored_or_leave_a_gap_fail_the_batch(store: Store) -> None:
    dids = fill(store, per_device=2)  # 4 leaves, nodes (0,0..3) (1,0..1) (2,0)
    reading = make_reading(dids[0], 2, 4)
    good = completed_nodes(4, 5)
    for bad in ([(NodeId(0, 3), bytes(32))], [(NodeId(1, 3), bytes(32))]):
        with pytest.raises(StoreError):
            store.append(AppendBatch(readings=[reading], nodes=[*good, *bad]))
        assert_unchanged(store, size=4, events=0)
    with pytest.raises(StoreError):  # a hash of the wrong size
        store.append(AppendBatch(readings=[reading], nodes=[(NodeId(0, 4), b"short")]))
    assert_unchanged(store, size=4, events=0)
    store.append(AppendBatch(readings=[reading], nodes=good))
    assert store.get_nodes([NodeId(0, 4)]) == [good[0][1]]


def test_an_unencodable_reading_fails_the_batch(store: Store) -> None:
    (did,) = registered(store, 1)
    good = make_reading(did, 0, 0)
    bad_reading = Reading(did, 1, (Record("has space", 1.0, BASE_TIME),))
    bad = replace(good, index=1, signed=SignedReading(bad_reading, signature=bytes(64)))
    with pytest.raises(StoreError):
        store.append(make_batch([good, bad]))
    assert_unchanged(store, size=0, events=0)


# -- sequence numbers and iteration ---------------------------------------------------


def test_last_seqs_is_the_highest_accepted_seq_of_each_device(store: Store) -> None:
    a, b = registered(store, 1, 2)
    registered(store, 3)  # no readings: not listed
    store.append(make_batch([make_reading(a, 5, 0), make_reading(b, 0, 1)]))
    store.append(make_batch([make_reading(a, 2, 2), make_reading(a, MAX_SEQ, 3)]))
    assert store.last_seqs() == {a: MAX_SEQ, b: 0}


def test_iter_readings_streams_every_reading_in_index_order(store: Store) -> None:
    dids = registered(store, 1, 2, 3)
    readings = readings_for(dids, 700)  # 2100 readings: more than one chunk
    store.append(make_batch(readings))
    store.append(make_batch(alerts=[make_alert(2100)]))
    assert list(store.iter_readings()) == readings


# -- queries -------------------------------------------------------------------------


def test_pages_walk_the_log_in_index_order(store: Store) -> None:
    dids = fill(store, per_device=10)
    everything = list(store.iter_readings())
    for limit in (1, 3, 7, 20, 1000):
        assert all_pages(store, ReadingQuery(limit=limit)) == everything
    first = store.query_readings(ReadingQuery(limit=20))
    assert first.items == everything and first.next_cursor is None
    three = store.query_readings(ReadingQuery(limit=3))
    assert three.items == everything[:3] and three.next_cursor is not None
    assert dids


@pytest.mark.parametrize(
    ("device", "name", "since", "until"),
    [
        (1, None, None, None),
        (None, "wind", None, None),
        (None, None, 3.0, None),
        (None, None, None, 6.0),
        (None, None, 3.0, 6.0),
        (2, "temp", 2.0, 8.0),
        (1, "wind", 4.0, None),
        (3, None, None, None),
        (None, "nope", None, None),
        (None, None, 6.0, 3.0),
    ],
)
def test_filters_select_the_same_readings_on_every_page(
    store: Store, device: int | None, name: str | None, since: float | None, until: float | None
) -> None:
    a, b = registered(store, 1, 2)
    readings = []
    for i in range(30):
        names = ("temp", "wind") if i % 3 == 0 else ("temp", "hum")
        readings.append(make_reading((a, b)[i % 2], i, i, names=names, time=BASE_TIME + i % 10))
    store.append(make_batch(readings, alerts=[make_alert(30)]))
    did = {1: a, 2: b, 3: "did:key:nobody", None: None}[device]
    lo = None if since is None else BASE_TIME + since
    hi = None if until is None else BASE_TIME + until
    expected = [
        r
        for r in readings
        if (did is None or r.signed.reading.device == did)
        and (name is None or any(rec.name == name for rec in r.signed.reading.records))
        and (lo is None or r.signed.reading.records[0].time >= lo)
        and (hi is None or r.signed.reading.records[0].time < hi)
    ]
    query = ReadingQuery(device=did, name=name, since=lo, until=hi, limit=4)
    assert all_pages(store, query) == expected


def test_a_name_filter_matches_whole_names_only(store: Store) -> None:
    (did,) = registered(store, 1)
    store.append(make_batch([make_reading(did, 0, 0, names=("temp2", "xtemp", "a.temp"))]))
    assert store.query_readings(ReadingQuery(name="temp")).items == []
    assert len(store.query_readings(ReadingQuery(name="a.temp")).items) == 1


def test_a_page_that_ends_the_log_has_no_cursor(store: Store) -> None:
    fill(store, per_device=3)  # 6 readings
    first = store.query_readings(ReadingQuery(limit=3))
    assert first.next_cursor is not None
    last = store.query_readings(ReadingQuery(limit=3, cursor=first.next_cursor))
    assert len(last.items) == 3 and last.next_cursor is None


def test_a_cursor_survives_appends(store: Store) -> None:
    dids = fill(store, per_device=2)
    page = store.query_readings(ReadingQuery(limit=4))
    assert page.next_cursor is None
    store.append(make_batch([make_reading(dids[0], 2, 4)]))
    page = store.query_readings(ReadingQuery(limit=3))
    rest = store.query_readings(ReadingQuery(limit=3, cursor=page.next_cursor))
    assert [r.index for r in rest.items] == [3, 4]


@pytest.mark.parametrize("cursor", ["", "!!", "AAAA", "AAAAAAAAAAA=", "x" * 500])
def test_a_bad_cursor_raises_input_error(store: Store, cursor: str) -> None:
    fill(store, per_device=1)
    with pytest.raises(InputError):
        store.query_readings(ReadingQuery(cursor=cursor))


@pytest.mark.parametrize("limit", [0, -1, 1001])
def test_a_limit_out_of_range_raises_input_error(store: Store, limit: int) -> None:
    with pytest.raises(InputError):
        store.query_readings(ReadingQuery(limit=limit))


def test_an_invalid_name_filter_raises_input_error(store: Store) -> None:
    with pytest.raises(InputError):
        store.query_readings(ReadingQuery(name="temp hum"))


# -- alerts and per-device views ------------------------------------------------------


def alert_at(
    index: int, device: str, name: str = "temp", time: float = BASE_TIME, score: float = 0.9
) -> tuple[int, bytes]:
    alert = Alert(device, name, time, score, 0.5, "seasonal", "ab" * 32, 0, index)
    return index, alert_leaf(alert)


def all_alert_pages(store: Store, query: AlertQuery) -> list[tuple[int, bytes]]:
    items: list[tuple[int, bytes]] = []
    while True:
        page = store.query_alerts(query)
        items.extend(page.items)
        if page.next_cursor is None:
            return items
        assert page.items, "a page with a next cursor must not be empty"
        query = replace(query, cursor=page.next_cursor)


def test_alerts_are_listed_by_their_fields(store: Store) -> None:
    (did,) = registered(store, 1)
    other = B.did
    alerts = [
        alert_at(1, did, "temp", BASE_TIME + 10, 0.6),
        alert_at(2, did, "hum", BASE_TIME + 20, 0.95),
        alert_at(3, other, "temp", BASE_TIME + 30, 0.7),
        make_alert(4),  # not an alert leaf: in the log, never listed
        alert_at(5, did, "temp", BASE_TIME + 40, 0.99),
    ]
    store.append(make_batch([make_reading(did, 0, 0)], alerts=alerts))
    assert store.log_size() == 6
    assert store.query_alerts(AlertQuery()).items == [alerts[i] for i in (0, 1, 2, 4)]
    assert store.query_alerts(AlertQuery(device=did)).items == [alerts[i] for i in (0, 1, 4)]
    assert store.query_alerts(AlertQuery(name="temp")).items == [alerts[i] for i in (0, 2, 4)]
    assert store.query_alerts(AlertQuery(min_score=0.9)).items == [alerts[1], alerts[4]]
    window = AlertQuery(since=BASE_TIME + 20, until=BASE_TIME + 40)
    assert store.query_alerts(window).items == [alerts[1], alerts[2]]
    assert store.query_alerts(AlertQuery(device="did:key:nobody")).items == []
    assert store.get_alert(2) == alerts[1][1]
    assert store.get_alert(4) == alerts[3][1]
    assert store.get_alert(0) is None  # a reading
    assert store.get_alert(99) is None


def test_alert_pages_walk_every_match_once(store: Store) -> None:
    (did,) = registered(store, 1)
    alerts = [alert_at(i, did, score=0.5 + i / 100) for i in range(23)]
    store.append(make_batch(alerts=alerts))
    assert all_alert_pages(store, AlertQuery(limit=5)) == alerts
    assert all_alert_pages(store, AlertQuery(limit=4, min_score=0.6)) == alerts[10:]
    last = store.query_alerts(AlertQuery(limit=23))
    assert last.items == alerts and last.next_cursor is None


@pytest.mark.parametrize(
    "query",
    [
        AlertQuery(limit=0),
        AlertQuery(limit=1001),
        AlertQuery(cursor="nope"),
        AlertQuery(min_score=float("nan")),
    ],
)
def test_a_bad_alert_query_raises_input_error(store: Store, query: AlertQuery) -> None:
    with pytest.raises(InputError):
        store.query_alerts(query)


def test_recent_readings_are_the_last_of_a_device_in_log_order(store: Store) -> None:
    a, b = registered(store, 1, 2)
    readings = readings_for([a, b], 6)
    named = make_reading(a, 6, 12, names=("power",))
    store.append(make_batch([*readings, named]))
    of_a = [r for r in readings if r.signed.reading.device == a]
    assert store.recent_readings(a, 3) == [of_a[4], of_a[5], named]
    assert store.recent_readings(a, 100) == [*of_a, named]
    assert store.recent_readings(a, 2, name="temp") == of_a[4:]
    assert store.recent_readings(a, 5, name="power") == [named]
    assert store.recent_readings(b, 5, name="power") == []
    assert store.recent_readings("did:key:nobody", 5) == []
    with pytest.raises(InputError):
        store.recent_readings(a, 0)
    with pytest.raises(InputError):
        store.recent_readings(a, 5, name="no spaces")


def test_readings_and_events_are_counted_per_device(store: Store) -> None:
    a, b = fill(store, per_device=7)
    kinds = [SecurityEventKind.REPLAY, SecurityEventKind.BAD_SIGNATURE, SecurityEventKind.REPLAY]
    store.add_events([SecurityEvent(a, kind, BASE_TIME) for kind in kinds])
    store.append(AppendBatch(events=[SecurityEvent(b, SecurityEventKind.SEQUENCE_GAP, 0.0)]))
    assert store.count_readings(a) == 7 and store.count_readings("did:key:nobody") == 0
    assert store.count_events(a) == {
        SecurityEventKind.REPLAY: 2,
        SecurityEventKind.BAD_SIGNATURE: 1,
    }
    assert store.count_events(b) == {SecurityEventKind.SEQUENCE_GAP: 1}
    assert store.count_events("did:key:nobody") == {}


# -- events, API keys, checkpoints ------------------------------------------------------


def test_events_are_listed_in_order_and_by_device(store: Store) -> None:
    e1 = SecurityEvent(A.did, SecurityEventKind.REPLAY, BASE_TIME, 4, "seq 4 again")
    e2 = SecurityEvent(B.did, SecurityEventKind.BAD_SIGNATURE, BASE_TIME + 1)
    e3 = SecurityEvent(A.did, SecurityEventKind.CLOCK_SKEW, BASE_TIME + 2, MAX_SEQ, "skew")
    store.add_events([e1, e2])
    store.add_events([])
    store.append(AppendBatch(events=[e3]))
    assert store.list_events() == [e1, e2, e3]
    assert store.list_events(A.did) == [e1, e3]
    assert store.list_events("did:key:nobody") == []


def test_api_keys_are_found_by_hash(store: Store) -> None:
    key = ApiKey("ops", b"\x01" * 32, BASE_TIME)
    store.add_api_key(key)
    assert store.find_api_key(b"\x01" * 32) == key
    assert store.find_api_key(b"\x02" * 32) is None
    with pytest.raises(ConflictError):
        store.add_api_key(replace(key, name="other"))
    assert store.find_api_key(b"\x01" * 32) == key


def checkpoint(size: int, when: float = BASE_TIME, root: bytes | None = None) -> Checkpoint:
    return Checkpoint("ab" * 32, size, root or bytes([size % 256]) * 32, when, b"\x05" * 64)


def test_checkpoints_are_found_by_exact_size(store: Store) -> None:
    cps = [checkpoint(1), checkpoint(5, BASE_TIME + 1), checkpoint(9, BASE_TIME + 2)]
    for cp in cps:
        store.add_checkpoint(cp)
    assert store.latest_checkpoint() == cps[-1]
    assert store.checkpoint_at(5) == cps[1]
    assert store.checkpoint_at(4) is None
    assert store.list_checkpoints() == cps


def test_a_checkpoint_again_at_the_same_size(store: Store) -> None:
    first, later = checkpoint(5), checkpoint(5, BASE_TIME + 60)
    store.add_checkpoint(first)
    store.add_checkpoint(later)
    assert store.checkpoint_at(5) == later
    assert store.latest_checkpoint() == later
    assert store.list_checkpoints() == [first, later]
    with pytest.raises(StoreError):  # same size, another root: the log contradicts itself
        store.add_checkpoint(checkpoint(5, BASE_TIME + 61, root=b"\xee" * 32))
    assert store.list_checkpoints() == [first, later]


# -- segments ------------------------------------------------------------------------


def mixed_log(store: Store) -> tuple[list[str], list[StoredReading]]:
    """Appends, in two batches, segments of every kind (a sealed one missing members),
    plain readings and alerts; returns the devices and every reading in index order."""
    a, b = registered(store, 1, 2)
    own = make_segment(a, 0, 0, 5, gaps=(2,))
    plain = make_reading(b, 0, 5, batch=True)
    batched = make_segment(a, 5, 7, 4, kind="batch_auths", names=("temp", "wind"))
    sealed = make_segment(b, 1, 11, 3, kind="sealed", positions=(0, 2, 3), batch_size=5)
    store.append(
        make_mixed_batch(
            [sealed, own, batched], readings=[plain], alerts=[make_alert(6), make_alert(14)]
        )
    )
    whole = make_segment(a, 20, 15, 8, kind="sealed", received_at=BASE_TIME + 99)
    tail = make_segment(b, 10, 23, 1, kind="sealed", positions=(6,), batch_size=7)
    after = make_reading(a, 40, 24)
    store.append(make_mixed_batch([whole, tail], readings=[after]))
    readings = [
        r for segment in (own, batched, sealed, whole, tail) for r in segment_readings(segment)
    ]
    readings += [plain, after]
    readings.sort(key=lambda r: r.index)
    return [a, b], readings


def test_segments_of_every_kind_come_back_exactly(store: Store) -> None:
    (a, b), readings = mixed_log(store)
    assert store.log_size() == 25
    assert list(store.iter_readings()) == readings
    for stored in readings:
        device, seq = stored.signed.reading.device, stored.signed.reading.seq
        assert store.get_reading(stored.id) == stored
        assert store.get_reading_at(stored.index) == stored
        assert store.find_seqs(device, [seq]) == {seq: stored}
    got = store.get_reading(readings[3].id)
    assert got is not None and got.message == readings[3].message
    assert [store.get_reading_at(i) for i in (6, 14, 25)] == [None, None, None]
    assert store.find_seqs(b, [2]) == {}  # the sealed batch's member 1 was not sent
    of_a = [r for r in readings if r.signed.reading.device == a]
    of_b = [r for r in readings if r.signed.reading.device == b]
    assert store.last_seqs() == {a: 40, b: 16}
    assert (store.count_readings(a), store.count_readings(b)) == (len(of_a), len(of_b))
    assert store.recent_readings(a, 3) == of_a[-3:]
    assert store.recent_readings(a, 100) == of_a
    assert store.recent_readings(a, 2, name="wind") == of_a[7:9]
    assert store.recent_readings(b, 1) == of_b[-1:]
    for limit in (1, 2, 3, 7, 100):
        assert all_pages(store, ReadingQuery(limit=limit)) == readings
        assert all_pages(store, ReadingQuery(device=b, limit=limit)) == of_b
        assert all_pages(store, ReadingQuery(name="wind", limit=limit)) == of_a[5:9]
    leaves = store.leaf_data(0, 25)
    assert [i for i, _ in leaves] == list(range(25))
    by_index = dict(leaves)
    for stored in readings:
        assert by_index[stored.index] == reading_leaf(stored.signed)
    assert store.leaf_data(3, 9) == leaves[3:9]


@pytest.mark.parametrize("span_gap", [1, 256])
def test_find_seqs_finds_every_stored_one_of_many_seqs(
    store: Store, span_gap: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sql, "SEQ_SPAN_GAP", span_gap)  # one query per seq, or one for all
    (a, b), readings = mixed_log(store)
    of_a = {r.signed.reading.seq: r for r in readings if r.signed.reading.device == a}
    of_b = {r.signed.reading.seq: r for r in readings if r.signed.reading.device == b}
    assert sorted(of_a) == [*range(0, 9), *range(20, 28), 40]
    missing = [9, 19, 28, 39, 41, 1 << 62, -1, 1 << 64]
    assert store.find_seqs(a, [*reversed(of_a), *missing]) == of_a
    assert store.find_seqs(a, [40, 0, 40, 3]) == {s: of_a[s] for s in (0, 3, 40)}
    assert store.find_seqs(b, [0, 1, 2, 3, 16]) == {s: of_b[s] for s in (0, 1, 3, 16)}
    assert store.find_seqs(b, iter([4])) == {4: of_b[4]}
    assert store.find_seqs(a, []) == {}
    assert store.find_seqs("did:key:nobody", [0, 1]) == {}


@pytest.mark.parametrize("chunk", [1, 3, 7, 1000])
def test_an_intact_store_has_no_index_mismatches_however_it_is_read(
    store: Store, chunk: int
) -> None:
    mixed_log(store)
    assert [m for s in range(0, 30, chunk) for m in store.index_mismatches(s, s + chunk)] == []
    assert store.index_mismatches(25, 100) == store.index_mismatches(-5, 0) == []


def test_every_reading_is_found_by_id_as_the_log_passes_id_epochs(store: Store) -> None:
    """The SQL stores index ids by epochs of 2**14 log indices (codec.ID_EPOCH_BITS), each
    probed by a lookup; here the log passes the end of one by readings, of one by an
    alert, and of two in one append. At every step each reading is found by its id and
    the audit finds the index whole; an append that fails changes nothing."""
    (a,) = registered(store, 1)
    coarse = 1 << codec.ID_EPOCH_BITS
    segments: list[Segment] = []

    def append(segment: Segment | None, alerts: list[tuple[int, bytes]]) -> None:
        store.append(make_mixed_batch([segment] if segment else [], alerts=alerts))
        if segment is not None:
            segments.append(segment)

    def check() -> None:
        size = store.log_size()
        for segment in segments:
            for offset in {*range(0, len(segment.ids), 997), len(segment.ids) - 1}:
                stored = store.get_reading(segment.ids[offset])
                assert stored is not None and stored.index == segment.first_index + offset
        assert store.index_mismatches(0, size) == []
        assert store.get_reading(hashlib.sha256(b"no such reading").hexdigest()) is None

    append(make_segment(a, 0, 0, 1500), [])  # inside the first epoch
    check()
    append(make_segment(a, 1500, 1500, coarse - 1 - 1500), [])  # up to one short
    check()
    # An alert would complete the first epoch; the batch fails on a stored node.
    late = make_segment(a, coarse, coarse, 40)
    failing = make_mixed_batch([late], alerts=[make_alert(coarse - 1)])
    stored_node = completed_nodes(0, 1)
    with pytest.raises(StoreError):
        store.append(replace(failing, nodes=[*stored_node, *failing.nodes]))
    assert store.log_size() == coarse - 1
    check()
    append(None, [make_alert(coarse - 1)])  # the alert completes it
    check()
    append(late, [])
    append(make_segment(a, 2 * coarse, coarse + 40, 2 * coarse), [])  # completes the next two
    check()
    assert store.log_size() == 3 * coarse + 40


def test_segment_queries_filter_each_reading_exactly(store: Store) -> None:
    a, b = registered(store, 1, 2)
    segments = []
    index = 0
    for k in range(8):
        kind = SEGMENT_KINDS[k % 3]
        names = ("temp", "wind") if k % 3 == 0 else ("temp", "hum")
        segments.append(make_segment((a, b)[k % 2], k * 10, index, 6, kind=kind, names=names))
        index += 6
    store.append(make_mixed_batch(segments))
    readings = [r for s in segments for r in segment_readings(s)]
    for did, name, since, until in (
        (a, None, None, None),
        (None, "wind", None, None),
        (None, None, BASE_TIME + 12, None),
        (None, None, None, BASE_TIME + 33),
        (b, "hum", BASE_TIME + 12, BASE_TIME + 53),
        (None, "nope", None, None),
    ):
        expected = [
            r
            for r in readings
            if (did is None or r.signed.reading.device == did)
            and (name is None or any(rec.name == name for rec in r.signed.reading.records))
            and (since is None or r.signed.reading.records[0].time >= since)
            and (until is None or r.signed.reading.records[0].time < until)
        ]
        for limit in (1, 4, 100):
            query = ReadingQuery(device=did, name=name, since=since, until=until, limit=limit)
            assert all_pages(store, query) == expected


def test_a_seq_stored_by_an_earlier_segment_fails_the_batch(store: Store) -> None:
    a, b = registered(store, 1, 2)
    store.append(make_mixed_batch([make_segment(a, 10, 0, 5, kind="sealed")]))
    for clash in (
        make_segment(a, 14, 5, 3),  # seq 14 is stored
        make_segment(a, 0, 5, 20, kind="batch_auths"),  # seqs 0..19 straddle 10..14
        make_segment(a, 8, 5, 3, kind="sealed", positions=(4,), batch_size=6),  # seq 12
    ):
        fresh = make_segment(b, 0, 5 + len(clash), 2)
        with pytest.raises(StoreError) as caught:
            store.append(make_mixed_batch([clash, fresh], alerts=[make_alert(7 + len(clash))]))
        assert a in str(caught.value) and "sequence number" in str(caught.value)
        assert_unchanged(store, size=5, events=0)
        assert store.find_seqs(b, [0]) == {}
    store.append(make_mixed_batch([make_segment(a, 15, 5, 3), make_segment(b, 0, 8, 2)]))
    assert store.log_size() == 10 and store.last_seqs() == {a: 17, b: 1}


def test_a_seq_twice_across_the_segments_of_one_batch_fails_it(store: Store) -> None:
    (a,) = registered(store, 1)
    first = make_segment(a, 0, 0, 3)
    again = make_segment(a, 2, 3, 3, kind="batch_auths")
    with pytest.raises(StoreError):
        store.append(make_mixed_batch([first, again]))
    with pytest.raises(StoreError):  # and against a plain reading of the batch
        store.append(make_mixed_batch([first], readings=[make_reading(a, 1, 3)]))
    assert_unchanged(store, size=0, events=0)


def test_segments_that_do_not_continue_the_log_fail(store: Store) -> None:
    (a,) = registered(store, 1)
    store.append(make_mixed_batch([make_segment(a, 0, 0, 4)]))
    for bad in (
        make_mixed_batch([make_segment(a, 10, 5, 3)]),  # a gap
        make_mixed_batch([make_segment(a, 10, 3, 3)]),  # an overlap
        make_mixed_batch([make_segment(a, 10, 4, 3)], alerts=[make_alert(5)]),
        make_mixed_batch([make_segment(a, 10, 4, 3), make_segment(a, 20, 6, 2)]),
        make_mixed_batch([make_segment(a, 10, 4, 3)], readings=[make_reading(a, 30, 4)]),
    ):
        with pytest.raises(StoreError) as caught:
            store.append(bad)
        assert "want 4" in str(caught.value)
        assert_unchanged(store, size=4, events=0)
    store.append(make_mixed_batch([make_segment(a, 10, 4, 3)], alerts=[make_alert(7)]))
    assert store.log_size() == 8


@pytest.mark.parametrize(
    "change",
    [
        {"gaps": (False,)},
        {"ids": ()},
        {"signatures": (b"x" * 64,) * 3},
        {"seal": None},
        {"positions": (0, 1, 9)},
        {"readings": ()},
        # Columns the store indexes that disagree with the messages: a wrong seq would
        # let a replay of the real one in later, a wrong time or name hide the reading.
        {"seqs": (2, 3, 9)},
        {"times": (0.0, 0.0, 0.0)},
        {"names": ("hum", "temp")},
    ],
)
def test_an_inconsistent_segment_fails_the_batch(store: Store, change: dict[str, object]) -> None:
    (a,) = registered(store, 1)
    good = make_segment(a, 0, 0, 2)
    bad = replace(make_segment(a, 2, 2, 3, kind="sealed"), **change)  # type: ignore[arg-type]
    with pytest.raises(StoreError):
        store.append(make_mixed_batch([good, bad]))
    assert_unchanged(store, size=0, events=0)


@pytest.mark.parametrize(
    "change",
    [{"gaps": (False,)}, {"ids": ()}, {"seal": None}, {"positions": (0, 1, 9)}, {"readings": ()}],
)
def test_a_batch_whose_columns_were_derived_is_still_checked_for_the_rest(
    store: Store, change: dict[str, object]
) -> None:
    # columns_derived spares the stores reading the messages again, nothing else.
    (a,) = registered(store, 1)
    good = make_segment(a, 0, 0, 2)
    bad = replace(make_segment(a, 2, 2, 3, kind="sealed"), **change)  # type: ignore[arg-type]
    with pytest.raises(StoreError):
        store.append(replace(make_mixed_batch([good, bad]), columns_derived=True))
    assert_unchanged(store, size=0, events=0)
    store.append(replace(make_mixed_batch([good]), columns_derived=True))
    assert [r.signed.reading.seq for r in store.iter_readings()] == list(good.seqs)


def test_segments_survive_close_and_reopen(durable_backend: Backend) -> None:
    store = durable_backend.open()
    _, readings = mixed_log(store)
    store.close()
    again = durable_backend.open()
    assert list(again.iter_readings()) == readings
    assert all(again.get_reading(r.id) == r for r in readings)


# -- lifetime ------------------------------------------------------------------------


def test_everything_survives_close_and_reopen(durable_backend: Backend) -> None:
    backend = durable_backend
    store = backend.open()
    dids = fill(store, per_device=20)
    store.revoke_device(dids[1], BASE_TIME)
    store.add_events([SecurityEvent(dids[0], SecurityEventKind.REPLAY, BASE_TIME, 1)])
    store.add_api_key(ApiKey("ops", b"\x01" * 32, BASE_TIME))
    store.add_checkpoint(checkpoint(40))
    store.append(make_batch(alerts=[make_alert(40)]))
    before = (
        store.list_devices(),
        list(store.iter_readings()),
        store.leaf_data(0, 41),
        store.get_nodes([node for node, _ in completed_nodes(0, 41)]),
        store.list_events(),
        store.find_api_key(b"\x01" * 32),
        store.list_checkpoints(),
        store.last_seqs(),
    )
    store.close()
    with pytest.raises(StoreError):
        store.log_size()
    again = backend.open()
    assert again.log_size() == 41
    after = (
        again.list_devices(),
        list(again.iter_readings()),
        again.leaf_data(0, 41),
        again.get_nodes([node for node, _ in completed_nodes(0, 41)]),
        again.list_events(),
        again.find_api_key(b"\x01" * 32),
        again.list_checkpoints(),
        again.last_seqs(),
    )
    assert after == before
    again.append(make_batch([make_reading(dids[0], 20, 41)]))
    assert again.log_size() == 42


def test_migrations_run_once(durable_backend: Backend) -> None:
    backend = durable_backend
    first = backend.open()
    fill(first, per_device=1)
    shipped = load_migrations(f"veriot.storage.{backend.name}")
    assert [m.version for m in shipped][:3] == [1, 2, 3]  # the schema every backend has
    assert getattr(first, "applied_migrations", None) == [m.version for m in shipped]
    first.close()
    second = backend.open()
    assert getattr(second, "applied_migrations", None) == []
    assert second.log_size() == 2


def test_a_closed_store_refuses_calls(store: Store) -> None:
    store.close()
    with pytest.raises(StoreError):
        store.log_size()
    with pytest.raises(StoreError):
        store.add_device(A)


# -- concurrency ---------------------------------------------------------------------


def test_readers_see_whole_batches_while_a_writer_appends(store: Store) -> None:
    dids = registered(store, 1, 2)
    batches, per_batch = 30, 10
    done = threading.Event()
    failures: list[BaseException] = []
    seen_sizes: set[int] = set()

    def write() -> None:
        try:
            for k in range(batches):
                readings = readings_for(dids, per_batch // 2, k * per_batch, k * per_batch // 2)
                store.append(make_batch(readings))
        except BaseException as exc:
            failures.append(exc)
        finally:
            done.set()

    def read() -> None:
        try:
            while not done.is_set():
                size = store.log_size()
                # Appends are atomic: a reader never sees part of a batch.
                assert size % per_batch == 0, f"saw a log of {size} leaves"
                seen_sizes.add(size)
                if size:
                    last = store.get_reading_at(size - 1)
                    assert last is not None and store.get_reading(last.id) == last
                    assert store.get_nodes([NodeId(0, size - 1)])
                    page = store.query_readings(ReadingQuery(device=dids[0], limit=5))
                    assert len(page.items) == 5
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=write)] + [threading.Thread(target=read) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not failures, failures
    assert store.log_size() == batches * per_batch
    assert len(list(store.iter_readings())) == batches * per_batch
    assert seen_sizes <= set(range(0, batches * per_batch + 1, per_batch))
