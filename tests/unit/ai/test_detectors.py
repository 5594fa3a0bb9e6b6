"""The detector conformance kit, run on every registered detector."""

from __future__ import annotations

import numpy as np
import pytest

from veriot.ai.base import Detector, MultivariateDetector
from veriot.ai.detectors import SeasonalEW
from veriot.ai.registry import MULTIVARIATE, UNIVARIATE, make_detector

STEP = 300.0


def _series(n: int = 800, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    t = 1.7e9 + STEP * np.arange(n)
    x = 20 + 3 * np.sin(2 * np.pi * t / 86400) + rng.normal(0, 1, n)
    x[n // 2] += 15
    return t, x


@pytest.fixture(params=sorted(UNIVARIATE))
def detector(request: pytest.FixtureRequest) -> Detector:
    made = make_detector(request.param)
    assert isinstance(made, Detector)
    return made


def test_scores_in_unit_interval_and_spike_found(detector: Detector) -> None:
    t, x = _series()
    s = detector.score_series(t, x)
    assert s.shape == x.shape
    assert np.all((s >= 0) & (s <= 1)) and np.all(np.isfinite(s))
    assert s[400] >= 0.5  # the injected 15-sigma spike
    assert np.mean(s >= 0.5) < 0.05


def test_causal(detector: Detector) -> None:
    t, x = _series()
    full = detector.score_series(t, x)
    np.testing.assert_array_equal(detector.score_series(t[:500], x[:500]), full[:500])


def test_deterministic_and_clone(detector: Detector) -> None:
    t, x = _series()
    a = [detector.step(float(v), float(w)) for v, w in zip(x, t, strict=True)]
    clone = detector.clone()
    assert clone.params() == detector.params()
    assert clone.version_hash() == detector.version_hash()
    b = [clone.step(float(v), float(w)) for v, w in zip(x, t, strict=True)]
    assert a == b


def test_streaming_matches_vectorised(detector: Detector) -> None:
    t, x = _series(400)
    stream = [detector.step(float(v), float(w)) for v, w in zip(x, t, strict=True)]
    np.testing.assert_allclose(detector.score_series(t, x), stream, atol=1e-9)


def test_constant_series_and_nan(detector: Detector) -> None:
    t = STEP * np.arange(300.0)
    assert np.all(detector.score_series(t, np.full(300, 7.25)) < 1e-9)  # rounding only
    x = _series(300)[1]
    x[::7] = np.nan
    s = detector.score_series(t, x)
    assert np.all(np.isfinite(s)) and np.all(s[::7] == 0.0)
    assert detector.clone().score_one(float("nan")) == 0.0


def test_many_sensors_per_step_equal_one_by_one(detector: Detector) -> None:
    t, x = _series(300)
    both = detector.score_series(t, np.column_stack([x, x * 2 + 1]))
    np.testing.assert_allclose(both[:, 0], detector.score_series(t, x), atol=1e-12)


def test_default_state_is_small() -> None:
    import sys

    d = SeasonalEW()
    size = sys.getsizeof(d) + sys.getsizeof(d.season) + sys.getsizeof(d.season_w)
    assert size <= 2048


@pytest.mark.parametrize("name", sorted(MULTIVARIATE))
def test_multivariate_conformance(name: str) -> None:
    rng = np.random.default_rng(3)
    rows = rng.normal(0, 1, (700, 4))
    rows[600:, 2] += 6
    rows[650, 0] = np.nan
    det = make_detector(name)
    assert isinstance(det, MultivariateDetector)
    t = np.arange(700.0)
    s = det.score_series(t, rows)
    assert np.all((s >= 0) & (s <= 1)) and np.all(np.isfinite(s))
    np.testing.assert_array_equal(det.score_series(t[:620], rows[:620]), s[:620])
    assert np.mean(s[620:] >= 0.5) > 0.9 and np.mean(s[400:600] >= 0.5) < 0.05
    const = det.score_series(t, np.ones((700, 4)))
    assert np.all(const == 0.0)


def test_a_run_stepped_at_once_scores_as_step_by_step(detector: Detector) -> None:
    t, x = _series(500)
    x[::11] = np.nan  # not finite: scored 0, not learned
    values, times = x.tolist(), t.tolist()
    one_by_one = detector.clone()  # the reference: score, then learn, one value at a time
    want = []
    for v, w in zip(values, times, strict=True):
        want.append(one_by_one.score_one(v, w))
        one_by_one.learn_one(v, w)
    many = detector.clone()
    got: list[float] = []
    for start, stop in [(0, 1), (1, 40), (40, 41), (41, 333), (333, 500)]:  # uneven runs
        got += many.step_many(values[start:stop], times[start:stop])
    assert got == want  # bit for bit
    stepped = detector.clone()
    assert [stepped.step(v, w) for v, w in zip(values, times, strict=True)] == want
    assert many.score_one(25.0, times[-1] + STEP) == one_by_one.score_one(25.0, times[-1] + STEP)
    assert len(set(want)) > 100 and max(want) > 0.3  # scores that move, the spike high
