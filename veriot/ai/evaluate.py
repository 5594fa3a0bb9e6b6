"""Evaluation of detectors: the synthetic suite and SKAB, scored by NAB windows and F1.

Protocols (frozen, the same for every detector):

- synthetic: each series is scored causally from a fresh state; a detection is a score
  >= DEFAULT_THRESHOLD; windows start at each injected onset (see veriot.ai.synthetic).
- SKAB (Katser and Kozitsin 2020, outlier detection): per file, the first 400 rows are the
  anomaly-free training part (the detector warms up on them); the rest is scored
  causally; precision, recall and F1 of the `anomaly` label over the scored rows of all
  files. The NAB score of SKAB uses each labelled anomaly run as a window.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from veriot.ai.base import DEFAULT_THRESHOLD, Detector, FloatArray, MultivariateDetector
from veriot.ai.nab import (
    EMPTY,
    PointScore,
    WindowScore,
    label_windows,
    nab_windows,
    point_score,
    window_score,
)
from veriot.ai.synthetic import LabelledSeries

SKAB_TRAIN_ROWS = 400


@dataclass(frozen=True, slots=True)
class GroupReport:
    name: str
    windows: WindowScore
    points: PointScore
    series: int


@dataclass(frozen=True, slots=True)
class Report:
    title: str
    detector: str
    groups: list[GroupReport] = field(default_factory=list)

    @property
    def overall(self) -> GroupReport:
        windows, points = EMPTY, PointScore(0, 0, 0)
        for g in self.groups:
            windows, points = windows + g.windows, points + g.points
        return GroupReport("overall", windows, points, sum(g.series for g in self.groups))

    def format(self) -> str:
        lines = [
            f"{self.title} - detector {self.detector}",
            f"{'data set':<16}{'series':>7}{'NAB':>8}{'found':>8}{'FP':>6}"
            f"{'prec':>7}{'recall':>8}{'F1':>7}",
        ]
        for g in [*self.groups, self.overall]:
            w, p = g.windows, g.points
            lines.append(
                f"{g.name:<16}{g.series:>7}{w.normalized:>8.1f}{f'{w.detected}/{w.windows}':>8}"
                f"{w.false_positives:>6}{p.precision:>7.3f}{p.recall:>8.3f}{p.f1:>7.3f}"
            )
        return "\n".join(lines)


def evaluate_synthetic(detector: Detector, suite: Sequence[LabelledSeries]) -> Report:
    groups: dict[str, tuple[WindowScore, PointScore, int]] = {}
    for s in suite:
        scores = detector.score_series(s.times, s.values)
        detections = scores >= DEFAULT_THRESHOLD
        w = window_score(detections, nab_windows(s.onsets, s.values.shape[0]))
        p = point_score(detections, s.labels)
        gw, gp, n = groups.get(s.kind, (EMPTY, PointScore(0, 0, 0), 0))
        groups[s.kind] = (gw + w, gp + p, n + 1)
    return Report(
        "synthetic suite",
        detector.name,
        [GroupReport(k, w, p, n) for k, (w, p, n) in groups.items()],
    )


@dataclass(frozen=True, slots=True)
class LabelledTable:
    """One SKAB file: `group` is its folder (valve1, valve2, other)."""

    group: str
    name: str
    times: FloatArray
    values: FloatArray
    labels: npt.NDArray[np.bool_]


def score_table(detector: Detector | MultivariateDetector, table: LabelledTable) -> FloatArray:
    """Per-row scores; a univariate detector scores each column and keeps the row's max."""
    scores = detector.score_series(table.times, table.values)
    if scores.ndim == 2:
        scores = scores.max(axis=1)
    return scores


def evaluate_skab(
    detector: Detector | MultivariateDetector, tables: Iterable[LabelledTable]
) -> Report:
    groups: dict[str, tuple[WindowScore, PointScore, int]] = {}
    for table in tables:
        scores = score_table(detector, table)[SKAB_TRAIN_ROWS:]
        labels = table.labels[SKAB_TRAIN_ROWS:]
        detections = scores >= DEFAULT_THRESHOLD
        w = window_score(detections, label_windows(labels), probation=0)
        p = point_score(detections, labels)
        gw, gp, n = groups.get(table.group, (EMPTY, PointScore(0, 0, 0), 0))
        groups[table.group] = (gw + w, gp + p, n + 1)
    return Report(
        "SKAB outlier detection",
        detector.name,
        [GroupReport(k, w, p, n) for k, (w, p, n) in sorted(groups.items())],
    )
