from __future__ import annotations

import math

import numpy as np
import pytest

from veriot.ai.alerts import (
    Alert,
    AlertEngine,
    alert_from_json,
    alert_leaf,
    alert_to_json,
    parse_alert_leaf,
)
from veriot.ai.detectors import SeasonalEW
from veriot.core.errors import DecodeError
from veriot.core.types import EntryKind


def test_engine_alerts_once_per_crossing_with_window() -> None:
    rng = np.random.default_rng(0)
    engine = AlertEngine()
    alerts = []
    for i in range(600):
        for dev in ("d1", "d2"):
            v = 20 + rng.normal() + (25 if dev == "d2" and i in (400, 401) else 0)
            a = engine.feed(dev, "meter", "temp", 1e9 + 60 * i, float(v), 2 * i + (dev == "d2"))
            if a is not None:
                alerts.append(a)
    assert [(a.device, a.time) for a in alerts] == [("d2", 1e9 + 60 * 400)]
    a = alerts[0]
    assert (a.first_index, a.last_index) == (1, 801)
    assert a.detector == "seasonal" and a.detector_hash == SeasonalEW().version_hash()
    assert a.score >= a.threshold == 0.5 and len(engine) == 2


def test_leaf_and_json_round_trip() -> None:
    a = Alert("did:key:z6M", "temp", 1.5e9, 0.93, 0.5, "seasonal", "ab" * 32, 3, 77)
    leaf = alert_leaf(a)
    assert leaf[0] == int(EntryKind.ALERT) == 2
    assert parse_alert_leaf(leaf) == a
    assert alert_from_json(alert_to_json(a)) == a
    with pytest.raises(DecodeError):
        parse_alert_leaf(leaf[:-1])
    with pytest.raises(DecodeError):
        parse_alert_leaf(leaf + b"\0")


def test_nan_reading_never_alerts() -> None:
    engine = AlertEngine()
    assert all(engine.feed("d", "t", "x", float(i), math.nan, i) is None for i in range(100))
