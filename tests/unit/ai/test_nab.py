"""NAB scoring against hand-computed examples."""

from __future__ import annotations

import math

import numpy as np
import pytest

from veriot.ai.nab import label_windows, nab_windows, point_score, scaled_sigmoid, window_score
from veriot.core.errors import InputError


def _det(n: int, at: list[int]) -> np.ndarray:
    d = np.zeros(n, dtype=bool)
    d[at] = True
    return d


def test_null_and_perfect() -> None:
    windows = [(100, 109), (200, 209)]
    null = window_score(_det(300, []), windows, probation=0)
    assert null.raw == -2.0 and null.normalized == 0.0
    perfect = window_score(_det(300, [100, 200]), windows, probation=0)
    assert perfect.normalized == pytest.approx(100.0)


def test_late_detection_and_false_positive_by_hand() -> None:
    # one window of width 10 at [100, 109]; detection at 104: p = -(109 - 104 + 1) / 10
    p = -0.6
    tp = (2 / (1 + math.exp(5 * p)) - 1) / (2 / (1 + math.exp(-5)) - 1)
    # a false positive at 20, before any window, costs 0.11 * scaled_sigmoid(3) (about -1)
    fp = 0.11 * scaled_sigmoid(3.0)
    # one right after the window (q = 1 / 9) costs almost nothing
    fp_after = 0.11 * scaled_sigmoid(1 / 9)
    s = window_score(_det(300, [20, 104, 108, 110]), [(100, 109)], probation=0)
    assert s.raw == pytest.approx(tp + fp + fp_after)
    assert s.normalized == pytest.approx(100 * (s.raw + 1) / 2)
    assert (s.detected, s.false_positives) == (1, 2)


def test_probation_ignores_early_detections() -> None:
    s = window_score(_det(1000, [10, 500]), [(500, 509)])
    assert s.false_positives == 0 and s.normalized == pytest.approx(100.0)


def test_windows_validated() -> None:
    with pytest.raises(InputError):
        window_score(_det(10, []), [(5, 20)])


def test_window_helpers_and_points() -> None:
    assert nab_windows([500], 1000) == [(500, 599)]
    assert label_windows(np.array([0, 1, 1, 0, 1], dtype=bool)) == [(1, 2), (4, 4)]
    p = point_score(_det(5, [1, 3]), np.array([0, 1, 1, 0, 0], dtype=bool))
    assert (p.tp, p.fp, p.fn) == (1, 1, 1) and p.f1 == pytest.approx(0.5)
