"""Commits of the sequencer seen from outside: verdicts and the log size only once a
commit is durable, a failed commit keeps nothing and the log goes on without a hole,
replays of readings still being written are answered as replays, and checkpoints sign
only what is durable."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future

import pytest

from veriot.clock import SystemClock
from veriot.core.errors import StoreError
from veriot.core.types import (
    Checkpoint,
    Device,
    NodeId,
    Reading,
    Record,
    SecurityEvent,
    SecurityEventKind,
    SignedReading,
    StoredReading,
)
from veriot.device import DeviceKey, sign_batch, sign_reading
from veriot.ingest.event_budget import EventBudget
from veriot.ingest.sequencer import LINGER_READINGS, MAX_GROUP_READINGS, Sequencer
from veriot.ingest.verdict import Reason, Verdict
from veriot.ingest.verify import Verifier
from veriot.ports import AppendBatch
from veriot.storage.memory import MemoryStore

T0 = 1_700_000_000.0
SEED = bytes(range(32))
WAIT_S = 10.0


class GatedStore(MemoryStore):
    """A memory store whose appends can be held at a gate, or made to fail; `away` makes
    every read and write the sequencer does fail, as a database that is down would;
    `land_then_fail` stores the next append, then raises (a COMMIT that landed while the
    connection broke)."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Semaphore(0)
        self.fail_next = 0
        self.away = False
        self.land_then_fail = False
        self.appends = 0
        self.lookups: list[tuple[str, list[int]]] = []  # find_seqs calls

    def _reach(self) -> None:
        if self.away:
            raise StoreError("connection refused")

    def append(self, batch: AppendBatch) -> None:
        self.appends += 1
        self.entered.release()
        assert self.gate.wait(WAIT_S), "the test never opened the gate"
        self._reach()
        if self.fail_next:
            self.fail_next -= 1
            raise StoreError("disk full")
        super().append(batch)
        if self.land_then_fail:
            self.land_then_fail = False
            raise StoreError("the connection broke during COMMIT")

    def log_size(self) -> int:
        self._reach()
        return super().log_size()

    def get_nodes(self, ids: Sequence[NodeId]) -> list[bytes]:
        self._reach()
        return super().get_nodes(ids)

    def last_seqs(self) -> dict[str, int]:
        self._reach()
        return super().last_seqs()

    def find_seqs(self, device: str, seqs: Iterable[int]) -> dict[int, StoredReading]:
        self._reach()
        self.lookups.append((device, sorted(seqs)))
        return super().find_seqs(device, seqs)

    def latest_checkpoint(self) -> Checkpoint | None:
        self._reach()
        return super().latest_checkpoint()


@pytest.fixture
def key() -> DeviceKey:
    return DeviceKey.generate()


@pytest.fixture
def store(key: DeviceKey) -> GatedStore:
    store = GatedStore()
    store.add_device(Device(key.did, key.public_key, "truck", "cold-chain", T0 - 10))
    return store


@pytest.fixture
def sequencer(store: GatedStore) -> Iterator[Sequencer]:
    sequencer = Sequencer(store, SEED, SystemClock(), checkpoint_interval_s=3600)
    sequencer.start()
    sequencer.checkpoint_now().result(WAIT_S)  # the next periodic one is an hour away
    yield sequencer
    store.gate.set()
    sequencer.stop()


def signed(key: DeviceKey, *seqs: int, value: float = 4.0) -> list[SignedReading]:
    return [sign_reading(key, s, (Record("temperature", value, T0 + s, "Cel"),)) for s in seqs]


def submit(
    sequencer: Sequencer, store: GatedStore, readings: Sequence[SignedReading]
) -> Future[list[Verdict]]:
    checked = Verifier(store.get_device, max_skew_s=1e12).check(readings, [], T0)
    return sequencer.submit(checked.items, checked.events)


def hold_first_commit(
    store: GatedStore, sequencer: Sequencer, key: DeviceKey
) -> Future[list[Verdict]]:
    """Submits seqs 1-3 and returns once their commit is held at the store's gate."""
    store.gate.clear()
    first = submit(sequencer, store, signed(key, 1, 2, 3))
    assert store.entered.acquire(timeout=WAIT_S)
    return first


def test_verdicts_and_the_log_size_wait_for_the_commit(
    store: GatedStore, sequencer: Sequencer, key: DeviceKey
) -> None:
    first = hold_first_commit(store, sequencer, key)
    second = submit(sequencer, store, signed(key, 4, 5))
    assert not first.done() and not second.done()
    assert sequencer.size == 0 and store.log_size() == 0

    store.gate.set()
    assert [v.index for v in first.result(WAIT_S)] == [0, 1, 2]
    assert [v.index for v in second.result(WAIT_S)] == [3, 4]
    assert sequencer.size == store.log_size() == 5


def test_a_submission_whose_caller_gave_up_is_still_committed_and_ingest_goes_on(
    store: GatedStore, sequencer: Sequencer, key: DeviceKey
) -> None:
    # An HTTP request's task cancelled while its readings wait for their commit (the
    # service shutting down, say) tries to cancel the submission's future
    # (asyncio.wrap_future does). Once queued, its readings are sequenced all the same,
    # and the sequencer goes on answering later submissions.
    first = hold_first_commit(store, sequencer, key)
    assert not first.cancel()
    store.gate.set()
    assert [v.index for v in first.result(WAIT_S)] == [0, 1, 2]
    later = submit(sequencer, store, signed(key, 4))
    assert [v.index for v in later.result(WAIT_S)] == [3]
    assert sequencer.size == store.log_size() == 4


def test_a_group_waits_for_requests_still_being_checked(
    store: GatedStore, sequencer: Sequencer, key: DeviceKey
) -> None:
    # Answers from the check processes arrive one by one; a group waits for those on
    # their way and commits them together.
    coming = [1]
    sequencer.coming = lambda: coming[0]
    sequencer.linger_s = 3600.0
    before = store.appends
    first = submit(sequencer, store, signed(key, 1, 2, 3))
    assert store.entered.acquire(timeout=0.2) is False  # waiting for the one coming
    coming[0] = 0
    second = submit(sequencer, store, signed(key, 4, 5))
    assert [v.index for v in first.result(WAIT_S)] == [0, 1, 2]
    assert [v.index for v in second.result(WAIT_S)] == [3, 4]
    assert store.appends - before == 1


def test_a_group_commits_at_once_with_nothing_coming_or_enough_gathered(
    store: GatedStore, sequencer: Sequencer, key: DeviceKey
) -> None:
    sequencer.linger_s = 3600.0  # a wait would outlast every result() below
    sequencer.coming = lambda: 0
    assert [v.index for v in submit(sequencer, store, signed(key, 1)).result(WAIT_S)] == [0]
    sequencer.coming = lambda: 1  # something on its way, but the group is large enough
    many = submit(sequencer, store, signed(key, *range(2, 2 + LINGER_READINGS)))
    assert len(many.result(WAIT_S)) == LINGER_READINGS
    sequencer.coming = None
    assert submit(sequencer, store, signed(key, 2 + LINGER_READINGS)).result(WAIT_S)[0].accepted


def test_a_group_waits_no_longer_than_its_linger(
    store: GatedStore, sequencer: Sequencer, key: DeviceKey
) -> None:
    sequencer.coming = lambda: 1  # never arrives
    sequencer.linger_s = 0.05
    assert [v.index for v in submit(sequencer, store, signed(key, 1)).result(WAIT_S)] == [0]


def test_a_lingering_group_is_not_woken_by_each_submission(
    store: GatedStore, sequencer: Sequencer, key: DeviceKey
) -> None:
    # While a group waits for requests still being checked, those that arrive are only
    # queued: the sequencer is woken once nothing more is coming (or enough readings
    # came), not by each one, and commits them all together.
    coming = [1]
    asked: list[str] = []

    def count() -> int:
        asked.append(threading.current_thread().name)
        return coming[0]

    sequencer.coming = count
    sequencer.linger_s = 3600.0
    before = store.appends
    futures = [submit(sequencer, store, signed(key, 1))]
    deadline = time.monotonic() + WAIT_S
    while "veriot-sequencer" not in asked:
        assert time.monotonic() < deadline, "the sequencer never took the first submission"
        time.sleep(0.01)
    time.sleep(0.3)  # it is now waiting for the one coming
    futures += [submit(sequencer, store, signed(key, seq)) for seq in range(2, 22)]
    time.sleep(0.3)
    assert asked.count("veriot-sequencer") == 1
    assert store.appends == before
    coming[0] = 0
    futures.append(submit(sequencer, store, signed(key, 22)))
    assert [f.result(WAIT_S)[0].index for f in futures] == list(range(22))
    assert store.appends - before == 1


def test_a_group_stops_at_its_largest_size_and_what_follows_commits_next_in_order(
    store: GatedStore, sequencer: Sequencer, key: DeviceKey
) -> None:
    def run(first_seq: int, size: int) -> Future[list[Verdict]]:
        readings = [
            Reading(key.did, seq, (Record("temperature", 4.0, T0 + seq, "Cel"),))
            for seq in range(first_seq, first_seq + size)
        ]
        compact, _ = sign_batch(key, readings)
        checked = Verifier(store.get_device, max_skew_s=1e12).check([], [compact], T0)
        return sequencer.submit(checked.items, checked.events)

    big = MAX_GROUP_READINGS * 3 // 5  # two of them pass the largest group
    sizes = [big, big, 3]
    first = hold_first_commit(store, sequencer, key)
    seq = 4
    futures = []
    for size in sizes:
        futures.append(run(seq, size))
        seq += size
    before = store.appends
    store.gate.set()
    assert [v.index for v in first.result(WAIT_S)] == [0, 1, 2]
    index = 3
    for future, size in zip(futures, sizes, strict=True):
        assert [v.index for v in future.result(WAIT_S)] == list(range(index, index + size))
        index += size
    assert store.appends - before == 2  # both big ones together, then the small one
    assert sequencer.size == store.log_size() == index


def test_a_failed_commit_keeps_nothing_and_the_log_has_no_hole(
    store: GatedStore, sequencer: Sequencer, key: DeviceKey
) -> None:
    first = hold_first_commit(store, sequencer, key)
    store.fail_next = 1
    store.gate.set()
    verdicts = first.result(WAIT_S)
    assert {v.reason for v in verdicts} == {Reason.UNAVAILABLE}
    assert all("disk full" in (v.detail or "") for v in verdicts)
    assert sequencer.size == store.log_size() == 0

    # nothing of the commit was kept, not even its sequence numbers: the readings land
    # now, at the indices the failed commit would have had, with no gap flagged
    again = submit(sequencer, store, signed(key, 1, 2, 3, 4)).result(WAIT_S)
    assert [(v.accepted, v.index, v.gap) for v in again] == [(True, i, False) for i in range(4)]
    assert sequencer.size == store.log_size() == 4
    cp = sequencer.checkpoint_now().result(WAIT_S)
    assert cp is not None and cp.size == 4


def test_a_failed_commit_does_not_spend_the_devices_security_event_budget(
    store: GatedStore, key: DeviceKey
) -> None:
    dropped: list[SecurityEventKind] = []
    budget = EventBudget(limit=1, window_s=60.0, on_drop=dropped.append)
    sequencer = Sequencer(store, SEED, SystemClock(), 3600, event_budget=budget)
    sequencer.start()
    try:
        forged = SecurityEvent(key.did, SecurityEventKind.BAD_SIGNATURE, T0, 9, "forged")
        checked = Verifier(store.get_device, max_skew_s=1e12).check(signed(key, 1), [], T0)
        store.fail_next = 1
        failed = sequencer.submit(checked.items, [forged]).result(WAIT_S)
        assert failed[0].reason is Reason.UNAVAILABLE
        assert store.list_events(key.did) == [] and dropped == []

        # The event of the failed commit was not stored, so the device's one event of
        # the minute is still to be spent: the same submission now stores it.
        assert sequencer.submit(checked.items, [forged]).result(WAIT_S)[0].accepted
        assert store.list_events(key.did) == [forged]
        later = [SecurityEvent(key.did, SecurityEventKind.BAD_SIGNATURE, T0 + 1, 10, "again")]
        sequencer.submit([], later).result(WAIT_S)
        assert store.list_events(key.did) == [forged] and dropped == [forged.kind]
    finally:
        sequencer.stop()


def test_a_replay_of_a_reading_still_being_written_is_a_replay(
    store: GatedStore, sequencer: Sequencer, key: DeviceKey
) -> None:
    first = hold_first_commit(store, sequencer, key)
    replay = submit(sequencer, store, signed(key, 2))
    twin = submit(sequencer, store, signed(key, 3, value=-30.0))
    store.gate.set()

    accepted = first.result(WAIT_S)
    (replayed,) = replay.result(WAIT_S)
    (equivocated,) = twin.result(WAIT_S)
    assert (replayed.reason, replayed.index, replayed.id) == (
        Reason.REPLAY,
        1,
        accepted[1].id,
    )
    assert equivocated.reason is Reason.EQUIVOCATION
    assert store.log_size() == 3


def test_a_checkpoint_signs_only_what_is_durable(
    store: GatedStore, sequencer: Sequencer, key: DeviceKey
) -> None:
    submit(sequencer, store, signed(key, 1)).result(WAIT_S)
    before = sequencer.checkpoint_now().result(WAIT_S)
    assert before is not None and before.size == 1

    store.gate.clear()
    held = submit(sequencer, store, signed(key, 2, 3))
    assert store.entered.acquire(timeout=WAIT_S)
    cut = sequencer.checkpoint_now()
    assert not cut.done()  # it waits for the commit being written
    store.fail_next = 1
    store.gate.set()
    assert {v.reason for v in held.result(WAIT_S)} == {Reason.UNAVAILABLE}
    after = cut.result(WAIT_S)
    assert after is not None and (after.size, after.root) == (1, before.root)


def test_while_the_store_is_away_every_submission_is_answered_and_nothing_is_kept(
    store: GatedStore, sequencer: Sequencer, key: DeviceKey
) -> None:
    assert submit(sequencer, store, signed(key, 1)).result(WAIT_S)[0].accepted
    store.away = True
    # The append fails, and so does re-reading the log: the sequencer must not stop.
    assert {v.reason for v in submit(sequencer, store, signed(key, 2, 3)).result(WAIT_S)} == {
        Reason.UNAVAILABLE
    }
    assert {v.reason for v in submit(sequencer, store, signed(key, 4)).result(WAIT_S)} == {
        Reason.UNAVAILABLE
    }
    assert sequencer.checkpoint_now().result(WAIT_S) is None  # nothing to sign from
    assert sequencer.size == 1

    store.away = False
    back = submit(sequencer, store, signed(key, 2, 3, 4)).result(WAIT_S)
    assert [(v.accepted, v.index, v.gap) for v in back] == [(True, i, False) for i in (1, 2, 3)]
    cp = sequencer.checkpoint_now().result(WAIT_S)
    assert cp is not None and cp.size == store.log_size() == 4


def test_a_replay_whose_lookup_fails_is_answered_unavailable_then_as_a_replay(
    store: GatedStore, sequencer: Sequencer, key: DeviceKey
) -> None:
    (first,) = submit(sequencer, store, signed(key, 1)).result(WAIT_S)
    store.away = True
    (lost,) = submit(sequencer, store, signed(key, 1)).result(WAIT_S)  # looked up: fails
    assert lost.reason is Reason.UNAVAILABLE and lost.id == first.id
    store.away = False
    (replay,) = submit(sequencer, store, signed(key, 1)).result(WAIT_S)
    assert (replay.reason, replay.index) == (Reason.REPLAY, first.index)
    assert store.log_size() == 1


def test_a_backlog_of_late_readings_is_looked_up_once_and_each_is_answered(
    store: GatedStore, sequencer: Sequencer, key: DeviceKey
) -> None:
    # An edge agent back from an outage sends what it held: seqs below ones already
    # logged, some new to the log, one sent before, one a twin of a logged reading.
    logged = submit(sequencer, store, signed(key, 1, 2, 6, 7)).result(WAIT_S)
    backlog = signed(key, 3, 4, 5) + signed(key, 2) + signed(key, 6, value=-30.0)
    backlog += signed(key, 8)
    store.lookups.clear()
    answers = submit(sequencer, store, backlog).result(WAIT_S)
    assert [(v.accepted, v.reason, v.index) for v in answers] == [
        (True, None, 4),
        (True, None, 5),
        (True, None, 6),
        (False, Reason.REPLAY, logged[1].index),
        (False, Reason.EQUIVOCATION, None),
        (True, None, 7),
    ]
    (twin,) = [e for e in store.list_events() if e.kind is SecurityEventKind.EQUIVOCATION]
    assert (twin.device, twin.seq) == (key.did, 6)
    # Seq 8 is above every logged seq: the store cannot hold it and is not asked.
    assert store.lookups == [(key.did, [2, 3, 4, 5, 6])]
    assert [r.signed.reading.seq for r in store.iter_readings()] == [1, 2, 6, 7, 3, 4, 5, 8]


def test_a_commit_that_landed_though_it_failed_answers_its_retry_as_a_replay(
    store: GatedStore, sequencer: Sequencer, key: DeviceKey
) -> None:
    store.land_then_fail = True
    failed = submit(sequencer, store, signed(key, 1, 2)).result(WAIT_S)
    assert {v.reason for v in failed} == {Reason.UNAVAILABLE}
    # The sender retries: the readings are in the log already, at the indices they got.
    retry = submit(sequencer, store, signed(key, 1, 2)).result(WAIT_S)
    assert [(v.reason, v.index) for v in retry] == [(Reason.REPLAY, 0), (Reason.REPLAY, 1)]
    assert sequencer.size == store.log_size() == 2
    nxt = submit(sequencer, store, signed(key, 3)).result(WAIT_S)
    assert [(v.accepted, v.index, v.gap) for v in nxt] == [(True, 2, False)]
