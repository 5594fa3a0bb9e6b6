"""The live alert pipeline: every accepted reading is scored, off the sequencer thread.

The sequencer hands each commit to `AlertPipeline.on_appended` (a queue put, so the
sequencer never waits on scoring). One worker thread takes commits in log order, feeds
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
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future

from veriot.ai.alerts import Alert, AlertEngine, alert_leaf, parse_alert_leaf
from veriot.ai.trust import is_plausible
from veriot.core.errors import InputError, VeriotError
from veriot.core.types import (
    Device,
    Reading,
    SecurityEvent,
    SecurityEventKind,
    Segment,
    StoredReading,
)
from veriot.ingest.sequencer import Sequencer
from veriot.ingest.verdict import Verdict
from veriot.ports import Clock, Store

log = logging.getLogger(__name__)

WARM_READINGS = 500
"""Readings per device replayed into the detectors at start."""
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
    ) -> None:
        self.engine = engine if engine is not None else AlertEngine()
        self._store = store
        self._sequencer = sequencer
        self._lookup = lookup
        self._clock = clock
        self._warm_readings = warm_readings
        self._start_size = store.log_size()
        self._queue: queue.SimpleQueue[_Commit | _Flush | None] = queue.SimpleQueue()
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
        """The sequencer's hook: queues the commit and returns at once."""
        if not self._stopping:
            self._queue.put((segments, alerts))

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
                        (
                            (segment.first_index + i, reading)
                            for segment in segments
                            for i, reading in enumerate(segment.readings)
                        ),
                        emit=True,
                    )
            except Exception:
                log.exception("scoring a commit of %d segments failed", len(segments))

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
        self._score(((r.index, r.signed.reading) for r in history), emit=False)
        log.info("alert detectors warmed on %d readings", len(history))

    def _score(self, readings: Iterable[tuple[int, Reading]], emit: bool) -> None:
        """Feeds each (log index, reading) to the engine, in log order."""
        engine = self.engine
        leaves: list[bytes] = []
        events: list[SecurityEvent] = []
        types: dict[str, str] = {}
        now = self._clock.now()
        scored = 0
        for index, reading in readings:
            device = reading.device
            kind = types.get(device)
            if kind is None:
                found = self._lookup(device)
                kind = types[device] = found.type if found is not None else "generic"
            for record in reading.records:
                if not is_plausible(record.unit, record.value):
                    events.append(
                        SecurityEvent(
                            device,
                            SecurityEventKind.IMPOSSIBLE_VALUE,
                            now,
                            reading.seq,
                            f"{record.name} = {record.value!r} {record.unit} is outside what "
                            f"the unit allows (log index {index})",
                        )
                    )
                    continue
                scored += 1
                alert = engine.feed(device, kind, record.name, record.time, record.value, index)
                if alert is not None and emit:
                    try:
                        leaves.append(alert_leaf(alert))
                    except InputError:
                        log.exception("alert of %s/%s cannot be a leaf", device, record.name)
        self.scored += scored
        if emit and (leaves or events):
            self.raised += len(leaves)
            self._pending = self._sequencer.submit((), events, leaves)
