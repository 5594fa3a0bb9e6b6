"""The alert pipeline between a real sequencer and the in-memory store: scoring off the
sequencer thread, alert leaves in the log, subscribers, impossible values, warm restarts."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from veriot.ai import Alert, AlertEngine, SeasonalEW, parse_alert_leaf, rescore
from veriot.ai.alerts import Run
from veriot.ai.base import Detector
from veriot.clock import SystemClock
from veriot.core.types import Device, Record, SecurityEventKind, SignedReading
from veriot.device import DeviceKey, sign_reading
from veriot.ingest.alerts import MAX_BACKLOG, AlertPipeline, LocalScorer, Scored, Scorer
from veriot.ingest.sequencer import Sequencer
from veriot.ingest.verify import Verifier
from veriot.ports import AlertQuery, Store
from veriot.storage.memory import MemoryStore

T0 = 1_700_000_000.0
SEED = bytes(range(32))


class Node:
    """A sequencer with an alert pipeline on `store`, as the bootstrap wires them."""

    def __init__(
        self,
        store: Store,
        engine: AlertEngine | None = None,
        scorer: Scorer | None = None,
        max_backlog: int = MAX_BACKLOG,
    ) -> None:
        self.store = store
        self.sequencer = Sequencer(store, SEED, SystemClock(), checkpoint_interval_s=3600)
        self.alerts = AlertPipeline(
            store,
            self.sequencer,
            store.get_device,
            SystemClock(),
            engine=engine,
            scorer=scorer,
            max_backlog=max_backlog,
        )
        self.sequencer.on_appended = self.alerts.on_appended
        self.verifier = Verifier(store.get_device, max_skew_s=1e12)
        self.sequencer.start()
        self.alerts.start()

    def ingest(self, readings: Sequence[SignedReading]) -> list[int]:
        checked = self.verifier.check(readings, [], T0)
        verdicts = self.sequencer.submit(checked.items, checked.events).result()
        assert all(v.accepted for v in verdicts), verdicts
        return [v.index for v in verdicts if v.index is not None]

    def stop(self) -> None:
        self.alerts.stop()
        self.sequencer.stop()


@pytest.fixture
def key() -> DeviceKey:
    return DeviceKey.generate()


@pytest.fixture
def store(key: DeviceKey) -> Store:
    store = MemoryStore()
    store.add_device(Device(key.did, key.public_key, "truck", "cold-chain", T0 - 10))
    return store


@pytest.fixture
def node(store: Store) -> Iterator[Node]:
    node = Node(store)
    yield node
    node.stop()


def temps(
    key: DeviceKey,
    n: int,
    first_seq: int = 1,
    spike_at: int | None = None,
) -> list[SignedReading]:
    rng = random.Random(first_seq)
    out = []
    for seq in range(first_seq, first_seq + n):
        value = 40.0 if seq == spike_at else 4.0 + rng.gauss(0, 0.05)
        out.append(sign_reading(key, seq, (Record("temperature", value, T0 + 60 * seq, "Cel"),)))
    return out


def alerts_in(store: Store) -> list[tuple[int, Alert]]:
    return [(i, parse_alert_leaf(leaf)) for i, leaf in store.query_alerts(AlertQuery()).items]


def test_a_spike_becomes_an_alert_leaf_and_reaches_subscribers(node: Node, key: DeviceKey) -> None:
    published: list[tuple[int, Alert]] = []
    got = threading.Event()

    def on_alerts(batch: Sequence[tuple[int, Alert]]) -> None:
        published.extend(batch)
        got.set()

    node.alerts.subscribe(on_alerts)
    indices = node.ingest(temps(key, 60, spike_at=45))
    node.alerts.flush()
    assert got.wait(10)
    ((index, alert),) = alerts_in(node.store)
    assert published == [(index, alert)]
    assert (alert.device, alert.name, alert.detector) == (key.did, "temperature", "seasonal")
    assert (alert.first_index, alert.last_index) == (indices[0], indices[44])
    assert alert.time == T0 + 60 * 45
    assert index == 60  # appended after the commit that carried the spike
    # the decision re-runs from the logged records of its window
    window = [node.store.get_reading_at(i) for i in range(alert.first_index, alert.last_index + 1)]
    records = [r for s in window if s is not None for r in s.signed.reading.records]
    assert rescore(alert, records) == alert.score
    assert rescore(alert, records[:-1]) < alert.threshold


def test_scoring_never_runs_on_the_sequencer_thread(store: Store, key: DeviceKey) -> None:
    threads: set[str] = set()

    class Spy(SeasonalEW):
        def step_many(self, values: Sequence[float], times: Sequence[float]) -> list[float]:
            threads.add(threading.current_thread().name)
            return super().step_many(values, times)

    def factory(_type: str, _name: str) -> Detector:
        return Spy()

    node = Node(store, AlertEngine(factory=factory))
    try:
        node.ingest(temps(key, 5))
        node.alerts.flush()
    finally:
        node.stop()
    assert threads == {"veriot-alerts"}


def test_an_impossible_value_is_an_event_and_not_learnt(node: Node, key: DeviceKey) -> None:
    readings = temps(key, 40)
    absurd = sign_reading(key, 41, (Record("temperature", -500.0, T0 + 60 * 41, "Cel"),))
    node.ingest([*readings, absurd])
    node.alerts.flush()
    events = node.store.list_events(key.did)
    assert [e.kind for e in events] == [SecurityEventKind.IMPOSSIBLE_VALUE]
    assert events[0].seq == 41 and "-500.0 Cel" in events[0].detail
    assert alerts_in(node.store) == []  # the detector never saw it
    assert node.alerts.scored == 40


def test_stop_commits_the_last_alerts(store: Store, key: DeviceKey) -> None:
    node = Node(store)
    node.ingest(temps(key, 40, spike_at=40))
    node.stop()  # no flush: stopping scores and logs what was handed over
    assert [a.last_index for _, a in alerts_in(store)] == [39]
    assert store.latest_checkpoint() is not None
    assert store.latest_checkpoint().size == store.log_size() == 41  # type: ignore[union-attr]


def test_a_restart_warms_the_detectors_and_raises_nothing_twice(
    store: Store, key: DeviceKey
) -> None:
    first = Node(store)
    first.ingest(temps(key, 60, spike_at=50))
    first.stop()
    assert len(alerts_in(store)) == 1
    second = Node(store)
    try:
        second.alerts.flush()
        engine = second.alerts.engine
        assert engine is not None and len(engine) == 1 and second.alerts.scored == 60
        # past its warm-up already: the first new spike alerts at once
        second.ingest(temps(key, 1, first_seq=61, spike_at=61))
        second.alerts.flush()
    finally:
        second.stop()
    (_, old), (_, new) = alerts_in(store)
    assert new.last_index == 61 and new.first_index == old.first_index == 0


class HeldScorer(LocalScorer):
    """Detectors that score only while `go` is set, counting the readings they saw."""

    def __init__(self) -> None:
        super().__init__(AlertEngine())
        self.go = threading.Event()
        self.seen = 0

    def score(self, runs: Sequence[Run], *args: Any) -> Scored:
        assert self.go.wait(10), "the test never let scoring go on"
        self.seen += sum(len(readings) for _, readings in runs)
        return super().score(runs, *args)


def test_ingest_waits_for_scoring_that_fell_a_backlog_behind(store: Store, key: DeviceKey) -> None:
    scorer = HeldScorer()
    node = Node(store, scorer=scorer, max_backlog=10)
    try:
        assert node.ingest(temps(key, 6)) == list(range(6))  # scoring holds: 6 behind
        assert node.ingest(temps(key, 6, first_seq=7)) == list(range(6, 12))  # 12 behind
        assert node.alerts.backlog == 12

        # a commit beyond the bound is answered, then the sequencer waits for scoring
        assert node.ingest(temps(key, 3, first_seq=13)) == [12, 13, 14]
        waiting = threading.Thread(target=node.ingest, args=(temps(key, 2, first_seq=16),))
        waiting.start()
        waiting.join(0.5)
        assert waiting.is_alive() and store.log_size() == 15
        scorer.go.set()
        waiting.join(10)
        assert not waiting.is_alive() and store.log_size() == 17
        node.alerts.flush()
        assert node.alerts.backlog == 0 and scorer.seen == 17
    finally:
        scorer.go.set()
        node.stop()


def test_scoring_a_run_per_sensor_equals_feeding_record_by_record() -> None:
    """score_readings hands each sensor's records of a run to its detector at once; the
    alerts (in log order), events and drift shares are those of feeding every record in
    turn, as AlertEngine.feed does."""
    from veriot.ai.trust import is_plausible
    from veriot.core.types import Reading
    from veriot.ingest.alerts import score_readings

    rng = random.Random(3)
    truck, meter = "did:key:z6Mktruck", "did:key:z6Mkmeter"
    types = {truck: "cold-chain", meter: "smart-meter"}
    runs: list[Run] = []
    index = 0
    for commit in range(6):
        for device in (truck, meter):
            readings = []
            for k in range(50):
                seq = commit * 50 + k + 1
                t = T0 + 60 * seq
                temp = 40.0 if seq in (120, 121, 200) else 4.0 + rng.gauss(0, 0.05)
                hum = 140.0 if seq % 97 == 0 else 80.0 + rng.gauss(0, 0.5)  # impossible
                power = 5.0 + rng.gauss(0, 0.1) + (3.0 if seq > 220 else 0.0)  # a shift
                records = (
                    Record("temperature", temp, t, "Cel"),
                    Record("humidity", hum, t, "%RH"),
                    Record("power", power, t, "kW"),
                )
                readings.append(Reading(device, seq, records))
            runs.append((index, tuple(readings)))
            index += 50

    at_once, by_record = AlertEngine(), AlertEngine()
    got = score_readings(at_once, runs, types, T0, emit=True)
    want_alerts, want_events, fed = [], [], 0
    for first, run in runs:
        for i, reading in enumerate(run, first):
            for r in reading.records:
                if not is_plausible(r.unit, r.value):
                    want_events.append((reading.device, reading.seq))
                    continue
                fed += 1
                alert = by_record.feed(
                    reading.device, types[reading.device], r.name, r.time, r.value, i
                )
                if alert is not None:
                    want_alerts.append(alert)
    assert [parse_alert_leaf(leaf) for leaf in got.leaves] == want_alerts
    assert len(want_alerts) >= 4 and {a.name for a in want_alerts} >= {"temperature", "power"}
    assert [(e.device, e.seq) for e in got.events] == want_events and want_events
    assert got.scored == fed
    for device in types:
        assert at_once.anomalous_share(device) == by_record.anomalous_share(device)
