"""The sequencer hands the store one Segment per run of a device's readings signed the
same way, and every reading comes back from the store exactly as it was signed, its
batch path included, also when some members of a compact batch were refused."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import pytest

from veriot.clock import SystemClock
from veriot.core import canonical
from veriot.core.types import Device, Reading, Record, Segment, SignedReading
from veriot.core.wire import CompactBatch
from veriot.device import DeviceKey, sign_batch, sign_reading
from veriot.ingest.sequencer import Sequencer
from veriot.ingest.verdict import Reason, Verdict
from veriot.ingest.verify import Verifier
from veriot.ledger.batch import batch_root_from_path
from veriot.ledger.hashing import leaf_hash
from veriot.ledger.segment import message_columns
from veriot.storage.memory import MemoryStore

T0 = 1_700_000_000.0
SEED = bytes(range(32))


def records(i: int) -> tuple[Record, ...]:
    return (Record("temperature", 4.0 + i, T0 + i, "Cel"), Record("humidity", 80.0, T0 + i, "%RH"))


class Harness:
    def __init__(self, *keys: DeviceKey) -> None:
        self.store = MemoryStore()
        for key in keys:
            self.store.add_device(Device(key.did, key.public_key, "d", "generic", T0 - 10))
        self.sequencer = Sequencer(self.store, SEED, SystemClock(), checkpoint_interval_s=3600)
        self.commits: list[Sequence[Segment]] = []
        self.sequencer.on_appended = lambda segments, _alerts: self.commits.append(segments)
        self.verifier = Verifier(self.store.get_device, max_skew_s=1e12)
        self.sequencer.start()

    def ingest(
        self, readings: Sequence[SignedReading] = (), batches: Sequence[CompactBatch] = ()
    ) -> list[Verdict]:
        checked = self.verifier.check(readings, batches, T0)
        return self.sequencer.submit(checked.items, checked.events).result()


@pytest.fixture
def keys() -> tuple[DeviceKey, DeviceKey]:
    return DeviceKey.generate(), DeviceKey.generate()


def test_one_segment_per_run_of_a_device_signed_the_same_way(
    keys: tuple[DeviceKey, DeviceKey],
) -> None:
    a, b = keys
    h = Harness(a, b)
    own = [sign_reading(a, seq, records(seq)) for seq in (1, 2, 3)]
    compact, _ = sign_batch(b, [Reading(b.did, seq, records(seq)) for seq in (1, 2, 3, 4)])
    _, with_paths = sign_batch(a, [Reading(a.did, seq, records(seq)) for seq in (4, 5)])
    verdicts = h.ingest([*own, *with_paths], [compact])
    h.sequencer.stop()

    assert [v.index for v in verdicts] == list(range(9))
    (segments,) = h.commits
    shapes = [
        (s.device, s.first_index, len(s), bool(s.signatures), bool(s.batch_auths), s.seal)
        for s in segments
    ]
    assert shapes == [
        (a.did, 0, 3, True, False, None),
        (a.did, 3, 2, False, True, None),
        (b.did, 5, 4, False, False, segments[2].seal),
    ]
    seal = segments[2].seal
    assert seal is not None and seal.size == 4 and segments[2].positions == (0, 1, 2, 3)
    # Each reading comes back from the store as it was signed.
    for signed, verdict in zip([*own, *with_paths], verdicts, strict=False):
        assert verdict.id is not None
        stored = h.store.get_reading(verdict.id)
        assert stored is not None and stored.signed == signed and stored.index == verdict.index


def columns_of_messages(segment: Segment) -> tuple[object, ...]:
    """What a segment's seqs, times and names must be: read from its own messages."""
    at = len(canonical.device_prefix(segment.device))
    return message_columns(segment.first_index, segment.messages, at)


def test_every_segment_has_the_columns_of_its_messages(
    keys: tuple[DeviceKey, DeviceKey],
) -> None:
    # The stores index seqs, times and names without reading the messages again (as they
    # take ids and leaf hashes as given): the segments the sequencer makes must agree,
    # however their readings were signed and whether they crossed a check process's pipe.
    from veriot.ingest.check_pool import decode_result, encode_result

    a, b = keys
    h = Harness(a, b)
    own = [sign_reading(a, seq, records(seq)) for seq in (1, 2, 3)]
    compact, _ = sign_batch(b, [Reading(b.did, seq, records(seq)) for seq in (1, 2, 3, 4)])
    _, with_paths = sign_batch(a, [Reading(a.did, seq, records(seq)) for seq in (4, 5)])
    h.ingest([*own, *with_paths], [compact])
    crossed = decode_result(
        encode_result(
            h.verifier.check([sign_reading(a, seq, records(seq)) for seq in (6, 7)], [], T0)
        )
    )
    h.sequencer.submit(crossed.items, crossed.events).result()
    h.sequencer.stop()

    segments = [s for commit in h.commits for s in commit]
    assert len(segments) == 4
    for segment in segments:
        assert (segment.seqs, segment.times, segment.names) == columns_of_messages(segment)


def test_sealed_batch_with_a_refused_member_keeps_the_others_provable(
    keys: tuple[DeviceKey, DeviceKey],
) -> None:
    a, _ = keys
    h = Harness(a)
    # seq 3 is logged first on its own; in the batch it then is a replay of the same message
    assert h.ingest([sign_reading(a, 3, records(3))])[0].accepted
    compact, members = sign_batch(a, [Reading(a.did, seq, records(seq)) for seq in (1, 2, 3, 4)])
    verdicts = h.ingest(batches=[compact])
    h.sequencer.stop()

    assert [v.accepted for v in verdicts] == [True, True, False, True]
    assert verdicts[2].reason is Reason.REPLAY and verdicts[2].index == 0
    segment = h.commits[-1][0]
    assert segment.positions == (0, 1, 3) and segment.seal is not None
    assert segment.seal.size == 4
    for member, verdict in zip(members, verdicts, strict=True):
        if not verdict.accepted:
            continue
        assert verdict.id is not None
        stored = h.store.get_reading(verdict.id)
        assert stored is not None and stored.signed == member
        auth = stored.signed.batch
        assert auth is not None
        message = canonical.reading_message(stored.signed.reading)
        root = batch_root_from_path(leaf_hash(message), auth.index, auth.size, auth.path)
        assert root == auth.root == segment.seal.root


def _sequence(
    key: DeviceKey,
    submissions: Sequence[Sequence[int]],
    fast: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[list[list[Verdict]], list[tuple[str, int | None, str]], list[Segment]]:
    """Sequences each submission of own-signed readings (by sequence number) in one group;
    returns verdicts, events (kind, seq, detail) and segments."""
    from concurrent.futures import Future

    from veriot.ingest import sequencer as module

    if not fast:
        monkeypatch.setattr(module, "_fresh_run", lambda *_: None)
    h = Harness(key)
    h.sequencer.stop()
    subs = []
    for seqs in submissions:
        checked = h.verifier.check([sign_reading(key, seq, records(seq)) for seq in seqs], [], T0)
        subs.append(module._Submission(checked.items, checked.events, Future()))
    h.sequencer._process(subs)
    monkeypatch.undo()
    events = [(e.kind.value, e.seq, e.detail) for e in h.store.list_events()]
    segments = [dataclasses.replace(x, received_at=0.0) for c in h.commits for x in c]
    return [s.future.result() for s in subs], events, segments


@pytest.mark.parametrize(
    "submissions",
    [
        [[1, 2, 3], [4, 5]],  # in order
        [[1, 2, 5, 6], [9]],  # gaps inside a run and between runs
        [[1, 2, 3], [2], [3, 4]],  # replays of a run earlier in the same group
        [[3, 1, 2], [4]],  # out of order: late readings fill in
        [[5, 6], [1, 7, 7]],  # a late one, then a duplicate inside one submission
    ],
)
def test_fast_path_for_fresh_runs_answers_as_reading_by_reading(
    keys: tuple[DeviceKey, DeviceKey],
    submissions: list[list[int]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key, _ = keys
    fast = _sequence(key, submissions, True, monkeypatch)
    slow = _sequence(key, submissions, False, monkeypatch)
    assert fast == slow
    verdicts = [v for out in fast[0] for v in out]
    assert any(v.accepted for v in verdicts)


def test_an_alert_between_two_runs_of_a_device_ends_the_first_segment(
    keys: tuple[DeviceKey, DeviceKey],
) -> None:
    from concurrent.futures import Future

    from veriot.ai.alerts import Alert, alert_leaf
    from veriot.ingest import sequencer as module

    key, _ = keys
    h = Harness(key)
    h.sequencer.stop()
    alert = alert_leaf(Alert(key.did, "temperature", T0, 0.99, 0.9, "seasonal-ew", "ab" * 32, 0, 2))
    subs = []
    for seqs in ([1, 2, 3], [4, 5]):
        checked = h.verifier.check([sign_reading(key, s, records(s)) for s in seqs], [], T0)
        subs.append(module._Submission(checked.items, checked.events, Future()))
    # the alert pipeline's submission lands in the same group, between the two requests
    subs.insert(1, module._Submission((), (), Future(), alerts=[alert]))
    h.sequencer._process(subs)

    first, _, second = (s.future.result() for s in subs)
    assert [v.index for v in first + second] == [0, 1, 2, 4, 5]
    assert all(v.accepted for v in first + second)
    assert [(s.first_index, len(s)) for c in h.commits for s in c] == [(0, 3), (4, 2)]
    assert h.store.log_size() == 6
    for seq, verdict in zip([1, 2, 3, 4, 5], first + second, strict=True):
        stored = h.store.get_reading_at(verdict.index or 0)
        assert stored is not None and stored.signed.reading.seq == seq


def test_runs_that_came_as_blobs_are_stored_as_blobs_joined(
    keys: tuple[DeviceKey, DeviceKey],
) -> None:
    from concurrent.futures import Future

    from veriot.core.columns import FixedRuns, HexIds, MessageRuns
    from veriot.ingest import sequencer as module
    from veriot.ingest.check_pool import decode_result, encode_result

    key, _ = keys
    h = Harness(key)
    h.sequencer.stop()

    def submission(seqs: list[int], wire: bool) -> module._Submission:
        checked = h.verifier.check([sign_reading(key, s, records(s)) for s in seqs], [], T0)
        if wire:  # as a check process answers: the run's columns as blobs
            checked = decode_result(encode_result(checked))
        return module._Submission(checked.items, checked.events, Future())

    h.sequencer._process([submission([1, 2], True), submission([3], True)])
    (blobs,) = h.commits[-1]
    assert isinstance(blobs.messages, MessageRuns) and isinstance(blobs.ids, HexIds)
    assert isinstance(blobs.leaf_hashes, FixedRuns) and isinstance(blobs.signatures, FixedRuns)
    # A run, then a request of a replay (3) and a new reading (6) that continues it.
    h.sequencer._process([submission([4, 5], True), submission([3, 6], False)])
    (mixed,) = h.commits[-1]
    assert (mixed.first_index, len(mixed)) == (3, 3)
    for segment in (blobs, mixed):
        stored = [h.store.get_reading_at(segment.first_index + i) for i in range(len(segment))]
        assert [s.signed.reading.seq for s in stored if s] == list(segment.seqs)
        assert [s.id for s in stored if s] == list(segment.ids)
        assert [s.leaf_hash for s in stored if s] == list(segment.leaf_hashes)
        assert [s.message for s in stored if s] == list(segment.messages)
        assert [s.signed.signature for s in stored if s] == list(segment.signatures)
