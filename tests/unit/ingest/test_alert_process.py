"""The alert scoring process: the same alerts, events and drift shares as detectors in the
service process, and scoring that goes on in the service when the process dies."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator

import pytest

from veriot.ai import AlertEngine, parse_alert_leaf
from veriot.ai.alerts import Run
from veriot.core.types import Reading, Record, SecurityEventKind
from veriot.ingest.alert_process import ProcessScorer
from veriot.ingest.alerts import LocalScorer
from veriot.ingest.service import HELPER_NICENESS

T0 = 1_700_000_000.0
TRUCK, METER = "did:key:z6Mktruck", "did:key:z6Mkmeter"
TYPES = {TRUCK: "cold-chain", METER: "smart-meter"}


def commits() -> list[list[Run]]:
    """Commits of two devices' readings in log order, each device's as one run: a steady
    stretch, then a spike in the truck's temperature and an impossible humidity from the
    meter."""
    rng = random.Random(7)
    out: list[list[Run]] = []
    index = 0
    for c in range(12):
        trucks, meters = [], []
        for k in range(10):
            seq = c * 10 + k + 1
            t = T0 + 60 * seq
            temp = 40.0 if seq == 95 else 4.0 + rng.gauss(0, 0.05)
            humidity = 140.0 if seq == 101 else 80.0 + rng.gauss(0, 0.5)
            trucks.append(Reading(TRUCK, seq, (Record("temperature", temp, t, "Cel"),)))
            meters.append(Reading(METER, seq, (Record("humidity", humidity, t, "%RH"),)))
        out.append([(index, tuple(trucks)), (index + 10, tuple(meters))])
        index += 20
    return out


@pytest.fixture
def process_scorer() -> Iterator[ProcessScorer]:
    scorer = ProcessScorer()
    yield scorer
    scorer.close()


def test_the_process_scores_exactly_as_the_service_would(process_scorer: ProcessScorer) -> None:
    local = LocalScorer(AlertEngine())
    leaves, events = [], []
    for n, commit in enumerate(commits()):
        emit = n > 0  # the first commit only warms the detectors, as after a restart
        remote = process_scorer.score(commit, TYPES, T0, emit)
        assert remote == local.score(commit, TYPES, T0, emit)
        for device in TYPES:
            assert process_scorer.anomalous_share(device) == local.anomalous_share(device)
        leaves += remote.leaves
        events += remote.events

    # the run is not trivial: the spike became an alert, the impossible value an event
    alerts = [parse_alert_leaf(leaf) for leaf in leaves]
    assert (TRUCK, "temperature") in {(a.device, a.name) for a in alerts}
    assert [(e.kind, e.device) for e in events] == [(SecurityEventKind.IMPOSSIBLE_VALUE, METER)]


def test_scoring_goes_on_in_the_service_when_the_process_dies(
    process_scorer: ProcessScorer,
) -> None:
    first, *rest = commits()
    process_scorer.score(first, TYPES, T0, False)
    process_scorer._process.kill()  # the crash under test
    process_scorer._process.join(10)

    # the service's own detectors take over, starting empty as after a restart
    fresh = LocalScorer(AlertEngine())
    events = []
    for commit in rest:
        result = process_scorer.score(commit, TYPES, T0, True)
        assert result == fresh.score(commit, TYPES, T0, True)
        events += result.events
    assert process_scorer.anomalous_share(TRUCK) == fresh.anomalous_share(TRUCK)
    assert [(e.kind, e.device) for e in events] == [(SecurityEventKind.IMPOSSIBLE_VALUE, METER)]


def test_the_scoring_process_yields_the_cores_to_the_service_process(
    process_scorer: ProcessScorer,
) -> None:
    own = os.getpriority(os.PRIO_PROCESS, 0)
    pid = process_scorer._process.pid
    assert pid is not None
    niceness = os.getpriority(os.PRIO_PROCESS, pid)
    assert niceness == min(19, own + HELPER_NICENESS)
