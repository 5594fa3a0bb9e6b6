"""Short-term forecasts with prediction intervals: level plus a time-of-day profile.

The model is the mean of the recent level (exponentially weighted) plus each phase of
the day's average deviation from it, over every past day; the interval is the empirical
5%..95% spread of its own one-day-ahead errors on the history, widened with the horizon.
Compared with seasonal-naive (the value one day earlier) by MASE on held-out data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from veriot.ai.base import FloatArray
from veriot.core.errors import InputError, InsufficientDataError

DAY = 86400.0
LEVEL_ALPHA = 0.02
MIN_ROWS = 8


@dataclass(frozen=True, slots=True)
class ForecastPoint:
    time: float
    mean: float
    lower: float
    upper: float


@dataclass(frozen=True, slots=True)
class Forecast:
    step: float
    points: list[ForecastPoint]


def _clean(times: npt.ArrayLike, values: npt.ArrayLike) -> tuple[FloatArray, FloatArray, float]:
    t = np.asarray(times, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    ok = np.isfinite(t) & np.isfinite(v)
    t, v = t[ok], v[ok]
    if t.shape[0] < MIN_ROWS:
        raise InsufficientDataError(
            f"a forecast needs at least {MIN_ROWS} finite points; got {t.shape[0]}"
        )
    order = np.argsort(t, kind="stable")
    t, v = t[order], v[order]
    gaps = np.diff(t)
    gaps = gaps[gaps > 0]
    if gaps.size == 0:
        raise InputError("all timestamps are equal; cannot infer a time step")
    return t, v, float(np.median(gaps))


def _phases(t: FloatArray, step: float) -> tuple[FloatArray, int]:
    bins = max(1, min(1440, round(DAY / step)))
    return ((t % DAY) // (DAY / bins)).astype(np.int64), bins


def forecast(times: npt.ArrayLike, values: npt.ArrayLike, horizon: int) -> Forecast:
    """Forecasts `horizon` steps (the median time step) after the last point.

    Preconditions: at least MIN_ROWS finite points and two distinct times; horizon >= 1.
    Raises InputError otherwise.
    """
    if horizon < 1:
        raise InputError(f"horizon must be at least 1 step; got {horizon}")
    t, v, step = _clean(times, values)
    phase, bins = _phases(t, step)
    mean = float(np.mean(v))
    seasonal = bool(t[-1] - t[0] >= 2 * DAY)
    profile = np.zeros(bins)
    if seasonal:
        sums = np.bincount(phase, weights=v - mean, minlength=bins)
        counts = np.bincount(phase, minlength=bins)
        profile = np.where(counts > 0, sums / np.maximum(counts, 1), 0.0)
    # the recent level of the deseasonalised series carries level changes forward
    deseasonalised = v - profile[phase]
    level = float(deseasonalised[0])
    for x in deseasonalised.tolist():
        level = (1 - LEVEL_ALPHA) * level + LEVEL_ALPHA * x
    residuals = deseasonalised - level
    lo, hi = np.quantile(residuals, [0.05, 0.95])
    base = level
    future = t[-1] + step * np.arange(1, horizon + 1)
    fphase, _ = _phases(future, step)
    points = []
    for h, (ft, ph) in enumerate(zip(future.tolist(), fphase.tolist(), strict=True), start=1):
        m = float(base + profile[ph])
        widen = float(np.sqrt(1.0 + h / max(len(v), 1)))
        points.append(ForecastPoint(ft, m, m + float(lo) * widen, m + float(hi) * widen))
    return Forecast(step, points)


@dataclass(frozen=True, slots=True)
class ForecastEvaluation:
    mase: float
    naive_mase: float

    @property
    def ratio(self) -> float:
        """Our MASE over seasonal-naive's: below 1 is better."""
        return self.mase / self.naive_mase if self.naive_mase > 0 else float("inf")


def evaluate_forecast(
    times: npt.ArrayLike, values: npt.ArrayLike, holdout: int
) -> ForecastEvaluation:
    """Forecasts the last `holdout` points from the rest; MASE of ours and seasonal-naive.

    MASE's scale is the in-sample MAE of the one-day seasonal-naive forecast. Precondition:
    the training part spans more than one day.
    """
    t, v, step = _clean(times, values)
    if not 0 < holdout < t.shape[0]:
        raise InputError(f"holdout must be between 1 and {t.shape[0] - 1}; got {holdout}")
    train_t, train_v, test_v = t[:-holdout], v[:-holdout], v[-holdout:]
    season = max(1, round(DAY / step))
    if train_v.shape[0] <= season:
        raise InputError(
            f"training part has {train_v.shape[0]} points; want more than one day ({season})"
        )
    scale = float(np.mean(np.abs(train_v[season:] - train_v[:-season])))
    if scale == 0:
        raise InputError("the training part repeats exactly each day; MASE is undefined")
    ours = np.array([p.mean for p in forecast(train_t, train_v, holdout).points])
    history = np.concatenate([train_v, np.empty(holdout)])
    n0 = train_v.shape[0]
    for i in range(holdout):  # seasonal-naive: the value one day before each target
        history[n0 + i] = history[n0 + i - season]
    naive = history[n0:]
    return ForecastEvaluation(
        float(np.mean(np.abs(test_v - ours)) / scale),
        float(np.mean(np.abs(test_v - naive)) / scale),
    )
