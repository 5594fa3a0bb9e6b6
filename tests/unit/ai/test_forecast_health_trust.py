from __future__ import annotations

import numpy as np
import pytest

from veriot.ai.forecast import evaluate_forecast, forecast
from veriot.ai.health import machine_health
from veriot.ai.trust import TrustSignals, is_plausible, trust_grade
from veriot.core.errors import InputError
from veriot.core.types import SecurityEventKind as K


def test_forecast_beats_seasonal_naive() -> None:
    rng = np.random.default_rng(5)
    t = 1.7e9 + 900.0 * np.arange(96 * 14)
    x = 50 + 10 * np.sin(2 * np.pi * t / 86400) + rng.normal(0, 2, t.size)
    ev = evaluate_forecast(t, x, holdout=96)
    assert ev.ratio < 0.8  # seasonal-naive carries a day's noise twice; the profile does not
    f = forecast(t, x, 8)
    assert len(f.points) == 8 and f.step == 900.0
    assert all(p.lower <= p.mean <= p.upper for p in f.points)


def test_forecast_rejects_short_input() -> None:
    with pytest.raises(InputError):
        forecast(np.arange(3.0), np.arange(3.0), 4)


def test_machine_health_degrades_and_names_the_sensor() -> None:
    rng = np.random.default_rng(2)
    rows = rng.normal(0, 1, (700, 3))
    healthy = machine_health(np.arange(700.0), rows, ["vib", "temp", "current"])
    assert healthy.index > 80 and healthy.rul_estimate_s is None
    rows[600:, 1] += np.linspace(0, 8, 100)
    sick = machine_health(np.arange(700.0), rows, ["vib", "temp", "current"])
    assert sick.index < healthy.index - 20 and sick.contributing[0] == "temp"
    assert sick.rul_estimate_s is not None and sick.rul_estimate_s >= 0


def test_grades() -> None:
    clean = trust_grade(TrustSignals(readings=10_000))
    assert clean.letter == "A" and clean.score == 100
    bad = trust_grade(TrustSignals(readings=1000, events={K.EQUIVOCATION: 2, K.REPLAY: 5}))
    assert bad.letter in "DEF" and any("equivocation" in r for r in bad.reasons)
    busy = trust_grade(TrustSignals(readings=1_000_000, events={K.SEQUENCE_GAP: 3}))
    assert busy.letter == "A"
    drifting = trust_grade(TrustSignals(readings=100, impossible_values=10, drift=0.5))
    assert drifting.score < 80 and len(drifting.reasons) == 2


def test_plausibility() -> None:
    assert is_plausible("Cel", 21.5) and not is_plausible("Cel", -300)
    assert not is_plausible("%RH", 101) and not is_plausible("W", -1)
    assert is_plausible("unknown-unit", 1e30) and not is_plausible("W", float("nan"))
