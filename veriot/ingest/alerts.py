"""The live alert pipeline: every accepted reading is scored, off the sequencer thread.

The sequencer hands each commit to `AlertPipeline.on_appended` (a queue put, so the
sequencer does not wait on scoring, unless scoring has fallen `max_backlog` readings
behind: then it waits, and ingest slows to the pace of scoring rather than memory
growing without bound). One worker thread takes commits in log order, feeds
each record to the AlertEngine (one detector per device and sensor) and submits the
alerts it raises to the sequencer as log leaves, with an IMPOSSIBLE_VALUE security event
for each record that physics rules out (such a record is not fed to its detector). When
the alert leaves come back committed, the worker fans them out to the subscribers (the
Server-Sent Events stream).

Re-checking an alert: its detector saw, in log order, every record named `alert.name` of
`alert.device` in the readings with log index first_index..last_index whose value is
plausible for its unit, and scored the last one `alert.score`
(`veriot.ai.alerts.rescore` repeats this). At start the worker warms each device's
detectors on its last `warm_readings` readings, so detection carries across restarts;
alerts those raise are not emitted again.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future
from typing import Protocol

import msgspec

from veriot.ai.alerts import Alert, AlertEngine, Run, parse_alert_leaf, score_runs
from veriot.core.errors import InputError, VeriotError
from veriot.core.types import (
    Device,
    SecurityEvent,
    Segment,
    StoredReading,
)
from veriot.ingest.sequencer import Sequencer
from veriot.ingest.verdict import Verdict
from veriot.ports import Clock, Store

log = logging.getLogger(__name__)

WARM_READINGS = 500
"""Readings per device replayed into the detectors at start."""
MAX_BACKLOG = 200_000
"""Committed readings not yet scored beyond which the sequencer's hook waits."""
STOP_TIMEOUT_S = 30.0

AlertSubscriber = Callable[[Sequence[tuple[int, Alert]]], None]
"""Called on the worker thread with each commit's (log index, alert); must be quick."""

_Commit = tuple[Sequence[Segment], Sequence[tuple[int, bytes]]]


class _Flush:
    def __init__(self) -> None:
        self.done = threading.Event()


class AlertPipeline:
    """Scores accepted readings and logs the alerts they raise (see the module docstring).

    `lookup(did)` finds a device (its type picks the engine's detectors). Build it
    before the sequencer commits anything, so that no commit escapes both the warm start
    and the hook.
    """

    def __init__(
        self,
        store: Store,
        sequencer: Sequencer,
        lookup: Callable[[str], Device | None],
        clock: Clock,
        engine: AlertEngine | None = None,
        warm_readings: int = WARM_READINGS,
        scorer: Scorer | None = None,
        max_backlog: int = MAX_BACKLOG,
    ) -> None:
        self.engine: AlertEngine | None = None
        """The detectors, when they run in this process (no `scorer` given)."""
        if scorer is None:
            self.engine = engine if engine is not None else AlertEngine()
            scorer = LocalScorer(self.engine)
        self._scorer: Scorer = scorer
        self._store = store
        self._sequencer = sequencer
        self._lookup = lookup
        self._clock = clock
        self._warm_readings = warm_readings
        self._start_size = store.log_size()
        self._queue: queue.SimpleQueue[_Commit | _Flush | None] = queue.SimpleQueue()
        self._max_backlog = max_backlog
        self._backlog = 0  # readings queued and not yet scored, under _drained
        self._drained = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._subscribers: dict[int, AlertSubscriber] = {}
        self._subscribers_lock = threading.Lock()
        self._next_subscriber = 0
        self._pending: Future[list[Verdict]] | None = None
        self.scored = 0
        """Records fed to the engine since start (warm start included)."""
        self.raised = 0
        """Alerts submitted to the log since start."""

    # -- the sequencer's side ----------------------------------------------------------

    def on_appended(self, segments: Sequence[Segment], alerts: Sequence[tuple[int, bytes]]) -> None:
        """The sequencer's hook: queues the commit and returns, at once unless scoring is
        `max_backlog` readings behind (then it waits until scoring catches up)."""
        if self._stopping:
            return
        n = sum(map(len, segments))
        with self._drained:
            if self._behind():
                log.warning(
                    "alert scoring is %d readings behind; ingest waits for it", self._backlog
                )
                while self._behind():
                    self._drained.wait(1.0)
            self._backlog += n
        self._queue.put((segments, alerts))

    def _behind(self) -> bool:
        """Whether the hook must wait: scoring runs and is max_backlog readings behind."""
        return (
            self._backlog >= self._max_backlog and self._thread is not None and not self._stopping
        )

    @property
    def scorer_process(self) -> int | None:
        """The id of the process scoring the readings, when not this one (see Scorer)."""
        return self._scorer.process_id()

    @property
    def backlog(self) -> int:
        """Readings committed to the log and not yet scored."""
        return self._backlog

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is None:
            self._stopping = False
            self._thread = threading.Thread(target=self._run, name="veriot-alerts", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Scores every commit made so far and submits its alerts, then stops the worker.
        Call while the sequencer still runs (it commits the last alerts when it stops)."""
        if self._thread is None:
            return
        self._barrier()
        self._stopping = True
        self._queue.put(None)
        self._thread.join(STOP_TIMEOUT_S)
        self._thread = None
        self._scorer.close()

    def flush(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """Waits until every commit made before the call is scored and the alerts it
        raised are durable in the log. Precondition: started."""
        self._barrier()
        marker = _Flush()
        self._queue.put(marker)
        if not marker.done.wait(timeout):
            raise TimeoutError(f"the alert pipeline did not catch up within {timeout:g}s")

    def _barrier(self) -> None:
        # A checkpoint request is served after every commit queued before it, and the hook
        # runs on the sequencer thread before the next item: once it is answered, every
        # earlier commit is in our queue.
        try:
            self._sequencer.checkpoint_now().result(STOP_TIMEOUT_S)
        except Exception:
            log.exception("the sequencer did not answer; scoring what was handed over")

    def use_scorer(self, scorer: Scorer) -> None:
        """Runs the detectors in `scorer` (e.g. a ProcessScorer) instead. Precondition:
        not started."""
        if self._thread is not None:
            raise RuntimeError("the alert pipeline is running; set its scorer before start")
        self._scorer.close()
        self._scorer, self.engine = scorer, None

    def anomalous_share(self, device: str) -> float:
        """The share of `device`'s sensors whose detector is at or above its threshold, as
        of the last commit scored (see AlertEngine.anomalous_share)."""
        return self._scorer.anomalous_share(device)

    # -- subscribers -------------------------------------------------------------------

    def subscribe(self, callback: AlertSubscriber) -> Callable[[], None]:
        """Calls `callback` with each committed batch of alerts; returns the unsubscribe."""
        with self._subscribers_lock:
            key = self._next_subscriber
            self._next_subscriber += 1
            self._subscribers[key] = callback

        def unsubscribe() -> None:
            with self._subscribers_lock:
                self._subscribers.pop(key, None)

        return unsubscribe

    def _publish(self, leaves: Sequence[tuple[int, bytes]]) -> None:
        alerts = []
        for index, leaf in leaves:
            try:
                alerts.append((index, parse_alert_leaf(leaf)))
            except InputError:
                log.warning("alert leaf at index %d does not parse; not published", index)
        with self._subscribers_lock:
            subscribers = list(self._subscribers.values())
        for callback in subscribers:
            try:
                callback(alerts)
            except Exception:
                log.exception("an alert subscriber failed")

    # -- the worker --------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._warm_start()
        except VeriotError:
            log.exception("warm start failed; detectors start empty")
        while True:
            item = self._queue.get()
            if item is None:
                self._wait_pending()
                return
            if isinstance(item, _Flush):
                self._wait_pending()
                item.done.set()
                continue
            segments, alerts = item
            try:
                if alerts:
                    self._publish(alerts)
                if segments:
                    self._score(
                        [(segment.first_index, segment.readings) for segment in segments],
                        [segment.device for segment in segments],
                        emit=True,
                    )
            except Exception:
                log.exception("scoring a commit of %d segments failed", len(segments))
            finally:
                with self._drained:
                    self._backlog -= sum(map(len, segments))
                    self._drained.notify_all()

    def _wait_pending(self) -> None:
        if self._pending is not None:
            try:
                self._pending.result(STOP_TIMEOUT_S)
            except Exception:
                log.exception("alert leaves were not committed")
            self._pending = None

    def _warm_start(self) -> None:
        if self._warm_readings <= 0 or self._start_size == 0:
            return
        history: list[StoredReading] = []
        for device in self._store.list_devices():
            recent = self._store.recent_readings(device.did, self._warm_readings)
            history.extend(r for r in recent if r.index < self._start_size)
        history.sort(key=lambda r: r.index)
        self._score(
            [(r.index, (r.signed.reading,)) for r in history],
            [r.signed.reading.device for r in history],
            emit=False,
        )
        log.info("alert detectors warmed on %d readings", len(history))

    def _score(self, runs: Sequence[Run], devices: Sequence[str], emit: bool) -> None:
        """Feeds each run of readings (of device `devices[i]`) to the detectors, in log
        order, and submits the alerts and impossible-value events they raise when `emit`.
        The readings are not read here: they may be packed (veriot.core.packed)."""
        types: dict[str, str] = {}
        for device in devices:
            if device not in types:
                found = self._lookup(device)
                types[device] = found.type if found is not None else "generic"
        result = self._scorer.score(runs, types, self._clock.now(), emit)
        self.scored += result.scored
        if emit and (result.leaves or result.events):
            self.raised += len(result.leaves)
            self._pending = self._sequencer.submit((), result.events, result.leaves)


class Scored(msgspec.Struct, array_like=True, gc=False):
    """What scoring a commit gave: alert leaves to log, impossible-value events, and how
    many records were fed to detectors."""

    leaves: list[bytes]
    events: list[SecurityEvent]
    scored: int


class Scorer(Protocol):
    """Where the detectors run: `score` feeds runs of readings in log order (see
    score_readings);
    `anomalous_share` reads a device's current drift share (AlertEngine.anomalous_share)."""

    def score(
        self,
        runs: Sequence[Run],
        types: Mapping[str, str],
        now: float,
        emit: bool,
    ) -> Scored: ...

    def anomalous_share(self, device: str) -> float: ...

    def process_id(self) -> int | None:
        """The process the detectors run in, when it is not this one and still runs."""
        ...

    def close(self) -> None: ...


class LocalScorer:
    """The detectors on the calling thread."""

    def __init__(self, engine: AlertEngine) -> None:
        self.engine = engine

    def score(
        self,
        runs: Sequence[Run],
        types: Mapping[str, str],
        now: float,
        emit: bool,
    ) -> Scored:
        return score_readings(self.engine, runs, types, now, emit)

    def anomalous_share(self, device: str) -> float:
        return self.engine.anomalous_share(device)

    def process_id(self) -> int | None:
        return None

    def close(self) -> None:
        pass


def score_readings(
    engine: AlertEngine,
    runs: Iterable[Run],
    types: Mapping[str, str],
    now: float,
    emit: bool,
) -> Scored:
    """`veriot.ai.alerts.score_runs`, as the Scored that crosses from a scoring process."""
    leaves, events, scored = score_runs(engine, runs, types, now, emit)
    return Scored(leaves, events, scored)
