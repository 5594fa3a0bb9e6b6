"""The stateful half of ingest: one writer that orders readings into the log.

One thread owns the in-memory right edge of the Merkle tree and the per-device sequence
state. Submissions queue up while a group is being written, so each durable commit
carries every reading that arrived meanwhile (group commit): a reading is durable before
its verdict is released, yet the cost of a commit is shared. Signed checkpoints are cut
from the same thread at a fixed interval.
"""

from __future__ import annotations

import bisect
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

from veriot.core.canonical import HASH_BYTES, SIGNATURE_BYTES
from veriot.core.columns import FixedRuns, HexIds, MessageRuns
from veriot.core.errors import VeriotError
from veriot.core.packed import PackedReadings
from veriot.core.types import (
    BatchAuth,
    BatchSeal,
    Checkpoint,
    Reading,
    SecurityEvent,
    SecurityEventKind,
    Segment,
)
from veriot.ingest.event_budget import EventBudget
from veriot.ingest.verdict import Reason, Verdict
from veriot.ingest.verify import Checked, CheckedRun
from veriot.ledger.checkpoint import sign_checkpoint
from veriot.ledger.compact import LogTree
from veriot.ledger.hashing import hash_blob, leaf_hash
from veriot.ports import AppendBatch, Clock, Store

log = logging.getLogger(__name__)

T = TypeVar("T")

MAX_GROUP_READINGS: Final = 20_000
"""Upper bound on readings per commit, so one commit stays short."""

LINGER_S: Final = 0.02
"""How long a group waits at most for requests still on their way (`coming`).

A commit costs the service about a millisecond of CPU whatever its size, and answers
from the check processes reach the sequencer one by one; committing each at once spends
that millisecond on every request. Waiting for those being checked (and no longer: with
none on its way, or LINGER_READINGS gathered, a group commits at once) shares it
(bench/ingest.py, 2026-12-07: with 1-reading requests 32 share a commit rather than 10,
and the service takes 235 rather than 330 us per request)."""

LINGER_READINGS: Final = 1500
"""A group of this many readings commits without waiting for more.

At 500, requests of 100 readings from 32 connections made commits of about 880 readings;
at 1,500, of about 1,560 (half of what those connections have in flight), and the
service took 5.7 to 6.2 us of CPU per reading against 6.7 to 7.2 (bench/ingest.py,
2026-12-07, per-batch signatures), with p99 latency 41 to 44 ms against 47. Requests of
single readings never gather this many, so it changes nothing for them."""

AppendedHook = Callable[[Sequence[Segment], Sequence[tuple[int, bytes]]], None]
"""Called after each commit with the segments of readings and the (index, leaf) alert
leaves stored."""


@dataclass(slots=True)
class _Submission:
    items: Sequence[Checked | Verdict]
    events: Sequence[SecurityEvent]
    future: Future[list[Verdict]]
    alerts: Sequence[bytes] = field(default=())

    @property
    def readings(self) -> int:
        """The leaves it adds to the log: readings and alerts."""
        return len(self.items) + len(self.alerts)


@dataclass(slots=True)
class _Plan:
    """What one group's commit stores, and the answers it releases once durable."""

    segments: list[Segment]
    leaf_hashes: FixedRuns
    """Every new leaf's hash, in log order, in one blob."""
    alerts: list[tuple[int, bytes]]
    events: list[SecurityEvent]
    verdicts: list[list[Verdict]]
    last_seq: dict[str, int]
    """The devices' last accepted sequence numbers after the commit."""


def _running_future() -> Future[Any]:
    """A future already running: what is queued is sequenced all the same, so it cannot
    be cancelled (asyncio.wrap_future tries when the awaiting task is; setting the result
    of a cancelled future would raise on the sequencer thread and stop it)."""
    future: Future[Any] = Future()
    future.set_running_or_notify_cancel()
    return future


class _CheckpointRequest:
    def __init__(self) -> None:
        self.future: Future[Checkpoint | None] = _running_future()


_Item = _Submission | _CheckpointRequest | None
"""What the sequencer's inbox holds: a submission, a checkpoint request, or the stop
mark (None)."""


class _Inbox:
    """The sequencer's queue, which wakes the sequencer only when it has work to do.

    While the sequencer lingers over a group (see LINGER_S), a submission wakes it only
    once `need` readings have come or nothing more is coming (`coming` reads 0); until
    then it just queues. Anything else, and every put while the sequencer waits for a
    first item, wakes it at once. A wake-up costs the putting thread (the event loop) a
    futex call and the service a thread switch, which with small requests was a tenth of
    the event loop's time. `take` hands over everything queued in one go.
    """

    def __init__(self, coming: Callable[[], int]) -> None:
        self._coming = coming
        self._items: deque[_Item] = deque()
        self._ready = threading.Condition(threading.Lock())
        self._need = 0
        """While the sequencer lingers: readings whose coming ends its wait; else 0."""
        self._queued = 0
        """Readings put since the sequencer last took."""

    def put(self, item: _Item) -> None:
        with self._ready:
            self._items.append(item)
            if isinstance(item, _Submission):
                self._queued += item.readings
                if self._need and self._queued < self._need and self._coming():
                    return
            self._ready.notify()

    def take(self, timeout: float | None, need: int = 0) -> list[_Item]:
        """Everything queued, oldest first. When nothing is, waits up to `timeout` seconds
        (None: until something is put; 0: not at all), lingering for `need` readings when
        `need` > 0 (see the class docstring); the list is empty when the time ran out."""
        with self._ready:
            if not self._items and (timeout is None or timeout > 0):
                self._need = need
                self._ready.wait(timeout)
                self._need = 0
            items = list(self._items)
            self._items.clear()
            self._queued = 0
            return items

    def put_back(self, items: list[_Item]) -> None:
        """Returns items taken and not handled to the front of the queue, in order."""
        if items:
            with self._ready:
                self._items.extendleft(reversed(items))


class Sequencer:
    """Assigns log indices, persists readings with their tree nodes, cuts checkpoints.

    `log_seed` is the log's Ed25519 seed; `checkpoint_interval_s` how often a new signed
    checkpoint is cut when the log has grown. `on_appended` is called (on the sequencer
    thread, after the commit) with the segments and alert leaves just stored; keep it cheap
    (hand work to another thread). `event_budget` decides which security events are
    stored (by default at most 100 of a kind per device per minute, see EventBudget).
    """

    def __init__(
        self,
        store: Store,
        log_seed: bytes,
        clock: Clock,
        checkpoint_interval_s: float,
        on_appended: AppendedHook | None = None,
        event_budget: EventBudget | None = None,
    ) -> None:
        self._store = store
        self._budget = event_budget if event_budget is not None else EventBudget()
        self._seed = log_seed
        self._clock = clock
        self._interval = checkpoint_interval_s
        self.on_appended = on_appended
        self._inbox = _Inbox(self._coming)
        self._tree = LogTree.restore(store.log_size(), store.get_nodes)
        self._last_seq: dict[str, int] = store.last_seqs()
        latest = store.latest_checkpoint()
        self._checkpoint_size = latest.size if latest else 0
        self._checkpoint_time = 0.0
        self._worker: threading.Thread | None = None
        self._committed_size = self._tree.size
        self._stale = False  # True after a failed append until the log is re-read
        self.coming: Callable[[], int] | None = None
        """How many requests are on their way to `submit` (being checked): while some
        are, a group of fewer than LINGER_READINGS readings waits up to `linger_s` for
        more (see LINGER_S). None: groups never wait."""
        self.linger_s = LINGER_S

    def _coming(self) -> int:
        return self.coming() if self.coming is not None else 0

    # -- public, thread-safe ---------------------------------------------------------

    @property
    def size(self) -> int:
        """The number of leaves durably in the log."""
        return self._committed_size

    def start(self) -> None:
        if self._worker is None:
            self._worker = threading.Thread(target=self._run, name="veriot-sequencer", daemon=True)
            self._worker.start()

    def stop(self) -> None:
        """Drains the queue, cuts a final checkpoint, and stops the thread."""
        if self._worker is not None:
            self._inbox.put(None)
            self._worker.join()
            self._worker = None

    def submit(
        self,
        items: Sequence[Checked | Verdict],
        events: Sequence[SecurityEvent] = (),
        alerts: Sequence[bytes] = (),
    ) -> Future[list[Verdict]]:
        """Queues checked readings; the future gives one verdict per item, in order,
        once the accepted ones are durable."""
        future: Future[list[Verdict]] = _running_future()
        self._inbox.put(_Submission(items, events, future, alerts))
        return future

    def checkpoint_now(self) -> Future[Checkpoint | None]:
        """Cuts a checkpoint at the current size (if the log grew) and returns the latest."""
        request = _CheckpointRequest()
        self._inbox.put(request)
        return request.future

    # -- the sequencer thread --------------------------------------------------------

    def _run(self) -> None:
        while True:
            timeout = max(0.0, self._checkpoint_time + self._interval - time.monotonic())
            items = self._inbox.take(timeout if self._tree.size > self._checkpoint_size else None)
            if not items:
                self._safe_checkpoint()
                continue
            group: list[_Submission] = []
            requests: list[_CheckpointRequest] = []
            stop = self._collect(items, group, requests)
            if group:
                self._process(group)
            if requests:
                cp = self._safe_checkpoint(force=True)
                for r in requests:
                    r.future.set_result(cp)
            elif time.monotonic() - self._checkpoint_time >= self._interval:
                self._safe_checkpoint()
            if stop:
                self._drain_and_finish()
                return

    def _collect(
        self,
        items: list[_Item],
        group: list[_Submission],
        requests: list[_CheckpointRequest],
    ) -> bool:
        """Gathers `items` and what follows them into one group (and the checkpoint
        requests among them), lingering for requests still on their way; True when the
        stop mark came. What is left after the stop mark or a full group stays queued."""
        count = 0
        deadline = time.monotonic() + self.linger_s
        while True:
            for k, item in enumerate(items):
                if item is None:
                    self._inbox.put_back(items[k + 1 :])
                    return True
                if isinstance(item, _CheckpointRequest):
                    requests.append(item)
                    continue
                group.append(item)
                count += item.readings
                if count >= MAX_GROUP_READINGS:
                    self._inbox.put_back(items[k + 1 :])
                    return False
            wait = deadline - time.monotonic()
            linger = wait if count < LINGER_READINGS and wait > 0 and self._coming() else 0.0
            items = self._inbox.take(linger, LINGER_READINGS - count)
            if not items and linger == 0.0:
                return False

    def _drain_and_finish(self) -> None:
        while items := self._inbox.take(0):
            for item in items:
                if isinstance(item, _Submission):
                    self._process([item])
                elif isinstance(item, _CheckpointRequest):
                    item.future.set_result(self._safe_checkpoint(force=True))
        self._safe_checkpoint(force=True)

    def _safe_checkpoint(self, force: bool = False) -> Checkpoint | None:
        """Never raises: a store failure is logged and the checkpoint retried next period."""
        try:
            return self._checkpoint(force)
        except VeriotError:
            log.exception("could not store a checkpoint; will retry")
        try:
            return self._store.latest_checkpoint()
        except VeriotError:
            log.exception("could not read the latest checkpoint")
            return None

    def _checkpoint(self, force: bool) -> Checkpoint | None:
        self._checkpoint_time = time.monotonic()
        if self._stale:  # the tree may hold a failed append's leaves: never sign them
            self._resync()
        size = self._tree.size
        if size == 0 or (size == self._checkpoint_size and not force):
            return self._store.latest_checkpoint()
        if size == self._checkpoint_size:
            return self._store.latest_checkpoint()
        cp = sign_checkpoint(self._seed, size, self._tree.root(), self._clock.now())
        self._store.add_checkpoint(cp)
        self._checkpoint_size = size
        return cp

    def _process(self, group: list[_Submission]) -> None:
        """Plans and commits one group. When the store fails, in a lookup while planning
        or in the append, nothing of the group is kept and its readings are answered
        unavailable (the senders retry); the sequencer goes on with the next group."""
        try:
            if self._stale:
                self._resync()
            plan = self._plan(group)
        except VeriotError as exc:  # the store is still away, or a replay's lookup failed
            log.exception("a lookup failed; rejecting the readings of %d requests", len(group))
            self._answer_unavailable(group, [sub.items for sub in group], exc)
            return
        admission = self._budget.admit(plan.events)
        try:
            leaf_hashes = plan.leaf_hashes
            nodes = self._tree.append_leaf_hashes(leaf_hashes) if leaf_hashes else []
            self._store.append(
                AppendBatch(
                    segments=plan.segments,
                    nodes=nodes,
                    events=admission.events,
                    alerts=plan.alerts,
                    columns_derived=True,  # CheckedRun and Checked columns: see Verifier
                )
            )
        except Exception as exc:  # the store failed: nothing of this group is kept
            log.exception("append failed; rejecting %d readings", sum(map(len, plan.segments)))
            self._stale = True
            self._answer_unavailable(group, plan.verdicts, exc)
            try:
                self._resync()
            except VeriotError:
                log.warning("the store is unavailable; the log is re-read before the next group")
            return
        self._committed_size = self._tree.size
        self._last_seq.update(plan.last_seq)
        self._budget.commit(admission)
        for sub, out in zip(group, plan.verdicts, strict=True):
            sub.future.set_result(out)
        if self.on_appended is not None and (plan.segments or plan.alerts):
            try:
                self.on_appended(plan.segments, plan.alerts)
            except Exception:
                log.exception("on_appended hook failed")

    def _resync(self) -> None:
        """Re-reads the log's right edge and the devices' last sequence numbers after a
        failed append (whose COMMIT may have landed all the same, when the connection
        broke while it was in flight). Raises StoreError while the store is away."""
        self._tree = LogTree.restore(self._store.log_size(), self._store.get_nodes)
        self._last_seq = self._store.last_seqs()
        self._committed_size = self._tree.size
        self._stale = False

    @staticmethod
    def _answer_unavailable(
        group: Sequence[_Submission],
        answers: Sequence[Sequence[Checked | Verdict]],
        exc: Exception,
    ) -> None:
        """Answers each submission of a group the store failed: what would have been
        accepted is unavailable, every refusal stands."""
        detail = f"the store could not record the reading: {exc}"
        for sub, out in zip(group, answers, strict=True):
            sub.future.set_result(
                [
                    item
                    if isinstance(item, Verdict) and not item.accepted
                    else Verdict(False, id=item.id, reason=Reason.UNAVAILABLE, detail=detail)
                    for item in out
                ]
            )

    def _plan(self, group: list[_Submission]) -> _Plan:
        """Decides each reading of the group (accepted at its index, or refused) and
        gathers what the commit stores; changes no state of the sequencer. Raises
        StoreError when a replay's lookup in the store fails."""
        now = self._clock.now()
        index = self._tree.size
        seen: dict[tuple[str, int], tuple[str, int]] = {}
        last_seq: dict[str, int] = {}  # updates to apply on success
        segments = _Segments(now)
        alerts: list[tuple[int, bytes]] = []
        events: list[SecurityEvent] = []
        leaf_hashes: list[bytes] = []  # blobs of whole leaf hashes, in log order
        verdicts: list[list[Verdict]] = []
        known_last = self._last_seq
        add_hash = leaf_hashes.append
        add_reading = segments.add
        runs: dict[str, list[tuple[CheckedRun, int]]] = {}  # fast-path runs, first indices
        for sub in group:
            events.extend(sub.events)
            fresh = _fresh_run(sub.items, last_seq, known_last)
            if fresh is not None:
                # The common case: one device's readings, all new, in order.
                run, last = fresh
                out = _accept_run(run, last, index, now, segments, events)
                add_hash(hash_blob(run.leaf_hashes))
                last_seq[run.device] = run.seqs[-1]
                runs.setdefault(run.device, []).append((run, index))
                index += len(run)
                for leaf in sub.alerts:
                    alerts.append((index, leaf))
                    add_hash(leaf_hash(leaf))
                    index += 1
                verdicts.append(out)
                continue
            out = []
            loose: list[bytes] = []  # this submission's leaf hashes, each checked below
            stored = self._stored(sub.items)
            for item in sub.items:
                if isinstance(item, Verdict):
                    out.append(item)
                    continue
                reading = item.reading
                device, seq = reading.device, reading.seq
                key = (device, seq)
                last = last_seq.get(device)
                if last is None:
                    last = known_last.get(device)
                if last is not None and seq <= last:  # not new: a replay, or late
                    prior = seen.get(key) or _in_runs(runs.get(device, ()), seq) or stored.get(key)
                    if prior is not None:
                        out.append(_conflict(item, prior, now, events))
                        continue
                gap = last is not None and seq > last + 1
                if gap:
                    events.append(
                        SecurityEvent(
                            device,
                            SecurityEventKind.SEQUENCE_GAP,
                            now,
                            seq,
                            f"expected {last + 1}, got {seq}" if last is not None else "",
                        )
                    )
                if last is None or seq > last:
                    last_seq[device] = seq
                seen[key] = (item.id, index)
                add_reading(item, index, gap)
                loose.append(item.leaf_hash)
                out.append(Verdict(True, id=item.id, index=index, gap=gap))
                index += 1
            add_hash(hash_blob(loose))
            for leaf in sub.alerts:
                alerts.append((index, leaf))
                add_hash(leaf_hash(leaf))
                index += 1
            verdicts.append(out)
        hashes = FixedRuns(b"".join(leaf_hashes), HASH_BYTES)
        return _Plan(segments.finish(), hashes, alerts, events, verdicts, last_seq)

    def _stored(self, items: Sequence[Checked | Verdict]) -> dict[tuple[str, int], tuple[str, int]]:
        """The (id, index) already logged for each (device, seq) of `items` that the
        store may hold (seq not above the device's highest committed one), read with one
        lookup per device: a submission of late readings, such as an edge agent's
        backlog, costs one read rather than one per reading."""
        wanted: dict[str, list[int]] = {}
        for item in items:
            if isinstance(item, Verdict):
                continue
            device, seq = item.reading.device, item.reading.seq
            last = self._last_seq.get(device)
            if last is not None and seq <= last:
                wanted.setdefault(device, []).append(seq)
        return {
            (device, seq): (found.id, found.index)
            for device, seqs in wanted.items()
            for seq, found in self._store.find_seqs(device, seqs).items()
        }


def _fresh_run(
    items: Sequence[Checked | Verdict], pending: dict[str, int], known: dict[str, int]
) -> tuple[CheckedRun, int | None] | None:
    """The submission as a CheckedRun, with its device's last accepted sequence number
    (`pending` updates of this group first, then `known`), when it is a run
    (CheckedRun.of) whose sequence numbers are all above that one; None otherwise."""
    run = CheckedRun.of(items)
    if run is None:
        return None
    last = pending.get(run.device)
    if last is None:
        last = known.get(run.device)
    if last is not None and run.seqs[0] <= last:
        return None
    return run, last


def _accept_run(
    run: CheckedRun,
    last: int | None,
    first: int,
    now: float,
    segments: _Segments,
    events: list[SecurityEvent],
) -> list[Verdict]:
    """Accepts every reading of a fresh run (its device's last accepted sequence number
    is `last`) at indices first, first+1, ...; returns their verdicts and records an
    event for each gap in the sequence numbers."""
    seqs = run.seqs
    n = len(seqs)
    gaps = [False] * n
    expected = last + 1 if last is not None else seqs[0]
    if seqs[0] != expected or seqs[-1] - seqs[0] != n - 1:
        for i, seq in enumerate(seqs):
            if (i or last is not None) and seq > expected:
                gaps[i] = True
                events.append(
                    SecurityEvent(
                        run.device,
                        SecurityEventKind.SEQUENCE_GAP,
                        now,
                        seq,
                        f"expected {expected}, got {seq}",
                    )
                )
            expected = seq + 1
    segments.add_run(run, first, gaps)
    return [
        Verdict(True, id=rid, index=first + i, gap=gap)
        for i, (rid, gap) in enumerate(zip(run.ids, gaps, strict=True))
    ]


def _in_runs(runs: Sequence[tuple[CheckedRun, int]], seq: int) -> tuple[str, int] | None:
    """The (id, index) of the reading with sequence number `seq` among a device's
    (run, first log index) of this group."""
    for run, first in runs:
        i = bisect.bisect_left(run.seqs, seq)
        if i < len(run.seqs) and run.seqs[i] == seq:
            return run.ids[i], first + i
    return None


class _Segments:
    """Gathers the accepted readings of one commit into Segments: a run of readings of
    one device, signed the same way (each on its own, each with its batch path, or all
    members of one compact batch), at consecutive log indices becomes one segment (an
    alert leaf between two readings of a device ends its segment). Precondition: readings
    are added in log index order."""

    __slots__ = ("_done", "_key", "_now", "_open")

    def __init__(self, now: float) -> None:
        self._now = now
        self._done: list[Segment] = []
        self._key: tuple[str, int, object] | None = None
        self._open: _OpenSegment | None = None

    def add(self, item: Checked, index: int, gap: bool) -> None:
        device = item.reading.device
        if item.seal is not None:
            key: tuple[str, int, object] = (device, _SEALED, item.seal)
        elif item.batch is not None:
            key = (device, _BATCH_AUTH, None)
        else:
            key = (device, _SIGNED, None)
        run = self._open
        if run is None or key != self._key or run.first_index + run.count != index:
            self._flush()
            self._key = key
            run = self._open = _OpenSegment(device, index, item.seal)
        reading = item.reading
        run.count += 1
        run.loose.append(reading)
        run.seqs.append(reading.seq)
        run.times.append(reading.records[0].time)
        run.names.update([record.name for record in reading.records])
        _add(run.messages, item.message)
        _add(run.ids, item.id)
        _add(run.leaf_hashes, item.leaf_hash)
        run.gaps.append(gap)
        if item.seal is not None:
            run.positions.append(item.position)
        elif item.batch is not None:
            run.batch_auths.append(item.batch)
        else:
            _add(run.signatures, item.signature or b"")

    def add_run(self, run: CheckedRun, first: int, gaps: Sequence[bool]) -> None:
        """`add` of each reading of `run` at first, first+1, ..., in one step: the run
        joins the open segment when it continues it (same device, signed the same way,
        the next index), else opens one. Its columns are kept as they came (blobs, see
        veriot.core.columns), not item by item."""
        if run.seal is not None:
            key: tuple[str, int, object] = (run.device, _SEALED, run.seal)
        elif run.batch_auths:
            key = (run.device, _BATCH_AUTH, None)
        else:
            key = (run.device, _SIGNED, None)
        seg = self._open
        if seg is None or key != self._key or seg.first_index + seg.count != first:
            self._flush()
            self._key = key
            seg = self._open = _OpenSegment(run.device, first, run.seal)
        if seg.loose:
            seg.parts.append(seg.loose)
            seg.loose = []
        seg.count += len(run)
        seg.parts.append(run.readings)
        seg.seqs.extend(run.seqs)
        seg.times.extend(run.times)
        seg.names.update(run.names)
        seg.messages.append(run.messages)
        seg.ids.append(run.ids)
        seg.leaf_hashes.append(run.leaf_hashes)
        seg.gaps.extend(gaps)
        seg.positions.extend(run.positions)
        seg.batch_auths.extend(run.batch_auths)
        if run.signatures:
            seg.signatures.append(run.signatures)

    def _flush(self) -> None:
        run = self._open
        if run is not None:
            self._done.append(
                Segment(
                    device=run.device,
                    first_index=run.first_index,
                    received_at=self._now,
                    readings=run.readings(),
                    messages=_messages(run.messages),
                    ids=_ids(run.ids),
                    leaf_hashes=_fixed(run.leaf_hashes, HASH_BYTES),
                    gaps=tuple(run.gaps),
                    seqs=tuple(run.seqs),
                    times=tuple(run.times),
                    names=tuple(sorted(run.names)),
                    signatures=_fixed(run.signatures, SIGNATURE_BYTES),
                    batch_auths=tuple(run.batch_auths),
                    seal=run.seal,
                    positions=tuple(run.positions),
                )
            )
            self._open = None

    def finish(self) -> list[Segment]:
        """The segments, once every accepted reading was added."""
        self._flush()
        return self._done


_SIGNED, _BATCH_AUTH, _SEALED = 0, 1, 2


class _OpenSegment:
    """The columns of a segment being gathered. Its readings are kept as the runs
    (`parts`, often packed: see veriot.core.packed) and single readings (`loose`) they
    came as, so that none is decoded here; its byte columns (messages, ids, leaf hashes,
    signatures) as the runs' blobs, single items in lists between them (see _add)."""

    __slots__ = (
        "batch_auths",
        "count",
        "device",
        "first_index",
        "gaps",
        "ids",
        "leaf_hashes",
        "loose",
        "messages",
        "names",
        "parts",
        "positions",
        "seal",
        "seqs",
        "signatures",
        "times",
    )

    def __init__(self, device: str, first_index: int, seal: BatchSeal | None) -> None:
        self.device = device
        self.first_index = first_index
        self.seal = seal
        self.count = 0
        self.parts: list[Sequence[Reading]] = []
        self.loose: list[Reading] = []
        self.seqs: list[int] = []
        self.times: list[float] = []
        self.names: set[str] = set()
        self.messages: list[Sequence[bytes]] = []
        self.ids: list[Sequence[str]] = []
        self.leaf_hashes: list[Sequence[bytes]] = []
        self.gaps: list[bool] = []
        self.signatures: list[Sequence[bytes]] = []
        self.batch_auths: list[BatchAuth] = []
        self.positions: list[int] = []

    def readings(self) -> Sequence[Reading]:
        """The readings gathered, in order, none of them decoded."""
        parts = self.parts
        if not parts:
            return tuple(self.loose)
        if self.loose:
            parts.append(self.loose)
            self.loose = []
        return parts[0] if len(parts) == 1 else PackedReadings(parts)


def _add(parts: list[Sequence[T]], item: T) -> None:
    """Appends one item to a column kept as parts: to its last part when that is a list
    of single items, else as a new one."""
    last = parts[-1] if parts else None
    if isinstance(last, list):
        last.append(item)
    else:
        parts.append([item])


def _flat(parts: Sequence[Sequence[T]]) -> tuple[T, ...]:
    return tuple(item for part in parts for item in part)


def _messages(parts: list[Sequence[bytes]]) -> Sequence[bytes]:
    """One column of messages: the runs' MessageRuns joined when every part is one of
    the same head, else the messages one by one (the store checks them)."""
    runs = [part for part in parts if type(part) is MessageRuns]
    if len(runs) == len(parts) and runs and all(r.head == runs[0].head for r in runs):
        return MessageRuns.join(runs)
    return _flat(parts)


def _ids(parts: list[Sequence[str]]) -> Sequence[str]:
    """One column of reading ids: the runs' HexIds joined, else the ids one by one."""
    runs = [part for part in parts if type(part) is HexIds]
    if len(runs) == len(parts) and runs:
        return HexIds.join(runs)
    return _flat(parts)


def _fixed(parts: list[Sequence[bytes]], width: int) -> Sequence[bytes]:
    """One column of `width`-byte items: the runs' FixedRuns joined, else one by one."""
    runs = [part for part in parts if type(part) is FixedRuns and part.width == width]
    if len(runs) == len(parts) and runs:
        return FixedRuns.join(runs, width)
    return _flat(parts)


def _conflict(
    item: Checked, prior: tuple[str, int], now: float, events: list[SecurityEvent]
) -> Verdict:
    """The verdict on a reading whose (device, seq) is already logged as `prior` (id,
    index): a replay when the content is the same, an equivocation when it differs. Both
    are recorded as security events of the device."""
    reading = item.reading
    prior_id, prior_index = prior
    if prior_id == item.id:
        events.append(SecurityEvent(reading.device, SecurityEventKind.REPLAY, now, reading.seq))
        return Verdict(
            False,
            id=prior_id,
            index=prior_index,
            reason=Reason.REPLAY,
            detail=f"sequence number {reading.seq} of {reading.device} "
            f"is already in the log at index {prior_index}",
        )
    detail = (
        f"{reading.device} signed two different readings with sequence "
        f"number {reading.seq}: got {item.id}, already have {prior_id}"
    )
    events.append(
        SecurityEvent(reading.device, SecurityEventKind.EQUIVOCATION, now, reading.seq, detail)
    )
    return Verdict(False, id=item.id, reason=Reason.EQUIVOCATION, detail=detail)
