"""Scoring detections: the Numenta Anomaly Benchmark's window score, and point-wise F1.

NAB rules (Lavin and Ahmad 2015; numenta/NAB `nab/sweeper.py`, `nab/runner.py`):

- Each labelled anomaly has a window [left, right] of row indices. A detection is a row
  whose score is >= the threshold. Rows inside the probationary period (the first
  min(floor(0.15 * rows), 750) rows) are ignored.
- Inside a window, a detection at relative position p = -(right - i + 1) / width (width =
  right - left + 1) is worth tp_weight * sigmoid_scaled(p) / sigmoid_scaled(-1), where
  sigmoid_scaled(y) = 2 / (1 + exp(5 y)) - 1 (or -1 for y > 3); only a window's best
  (earliest) detection counts. An undetected window costs fn_weight.
- Outside windows, a detection costs fp_weight * sigmoid_scaled(q) where q is the distance
  past the previous window's right edge over (that window's width - 1); before the first
  window q = 3 (full cost, since sigmoid_scaled(3) is about -1).
- Normalised over a corpus: 100 * (raw - null) / (perfect - null) with null = the raw
  score of a detector that never fires and perfect = tp_weight * number of windows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from veriot.core.errors import InputError

BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class CostProfile:
    tp_weight: float = 1.0
    fp_weight: float = 0.11
    fn_weight: float = 1.0


STANDARD = CostProfile()
REWARD_LOW_FP = CostProfile(fp_weight=0.22)
REWARD_LOW_FN = CostProfile(fp_weight=0.11, fn_weight=2.0)


@dataclass(frozen=True, slots=True)
class WindowScore:
    raw: float
    null: float
    perfect: float
    windows: int
    detected: int
    false_positives: int

    @property
    def normalized(self) -> float:
        """100 for perfect, 0 for never firing; NaN-free (0 when there are no windows)."""
        if self.perfect == self.null:
            return 0.0
        return 100.0 * (self.raw - self.null) / (self.perfect - self.null)

    def __add__(self, other: WindowScore) -> WindowScore:
        return WindowScore(
            self.raw + other.raw,
            self.null + other.null,
            self.perfect + other.perfect,
            self.windows + other.windows,
            self.detected + other.detected,
            self.false_positives + other.false_positives,
        )


EMPTY = WindowScore(0.0, 0.0, 0.0, 0, 0, 0)


def scaled_sigmoid(y: float) -> float:
    if y > 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * y)) - 1.0


def probationary_length(rows: int) -> int:
    return min(math.floor(0.15 * rows), 750)


def window_score(
    detections: BoolArray,
    windows: Sequence[tuple[int, int]],
    profile: CostProfile = STANDARD,
    probation: int | None = None,
) -> WindowScore:
    """NAB score of one data set. `windows` are inclusive (left, right) row indices,
    sorted and disjoint. Raises InputError for windows out of range or overlapping."""
    n = int(detections.shape[0])
    last = -1
    for left, right in windows:
        if not (0 <= left <= right < n) or left <= last:
            raise InputError(f"window ({left}, {right}) is out of order or outside 0..{n - 1}")
        last = right
    if probation is None:
        probation = probationary_length(n)
    max_tp = scaled_sigmoid(-1.0)
    best = [-profile.fn_weight] * len(windows)
    fp_total = 0.0
    fp_count = 0
    w = 0
    prev_right: int | None = None
    prev_width = 0
    for i in np.flatnonzero(detections).tolist():
        while w < len(windows) and windows[w][1] < i:
            prev_right, prev_width = windows[w][1], windows[w][1] - windows[w][0] + 1
            w += 1
        if i < probation:
            continue
        if w < len(windows) and windows[w][0] <= i:
            left, right = windows[w]
            width = right - left + 1
            value = scaled_sigmoid(-(right - i + 1) / width) * profile.tp_weight / max_tp
            best[w] = max(best[w], value)
        else:
            # NAB divides by (width - 1); a one-row window would divide by zero there
            q = 3.0 if prev_right is None else abs(prev_right - i) / max(prev_width - 1, 1)
            fp_total += scaled_sigmoid(q) * profile.fp_weight
            fp_count += 1
    detected = sum(1 for b in best if b > -profile.fn_weight)
    return WindowScore(
        raw=sum(best) + fp_total,
        null=-profile.fn_weight * len(windows),
        perfect=profile.tp_weight * len(windows),
        windows=len(windows),
        detected=detected,
        false_positives=fp_count,
    )


def nab_windows(onsets: Sequence[int], rows: int) -> list[tuple[int, int]]:
    """Windows of NAB's width (10% of the rows over the number of anomalies) that start at
    each known onset; overlapping windows are merged."""
    if not onsets:
        return []
    width = max(1, int(0.1 * rows / len(onsets)))
    out: list[tuple[int, int]] = []
    for onset in sorted(onsets):
        left, right = onset, min(rows - 1, onset + width - 1)
        if out and left <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], right))
        else:
            out.append((left, right))
    return out


def label_windows(labels: BoolArray) -> list[tuple[int, int]]:
    """The maximal runs of true labels as inclusive (left, right) windows."""
    padded = np.r_[False, labels.astype(bool), False]
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    return [(int(a), int(b) - 1) for a, b in zip(edges[::2], edges[1::2], strict=True)]


@dataclass(frozen=True, slots=True)
class PointScore:
    tp: int
    fp: int
    fn: int

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def __add__(self, other: PointScore) -> PointScore:
        return PointScore(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn)


def point_score(detections: BoolArray, labels: BoolArray) -> PointScore:
    d, y = detections.astype(bool), labels.astype(bool)
    if d.shape != y.shape:
        raise InputError(f"detections {d.shape} and labels {y.shape} differ in shape")
    return PointScore(int(np.sum(d & y)), int(np.sum(d & ~y)), int(np.sum(~d & y)))
