"""Machine health: an index from 0 (failed) to 100 (as when learnt) and remaining life.

The reference of normal operation is the first rows of the history (Hotelling's warm-up,
or the first half when the history is shorter). The index is 100 * (1 - s) where s is
the mean Hotelling score of the last `recent` rows; the remaining useful life is the time
until a straight line through the recent scores reaches FAILURE_SCORE, when it rises.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from veriot.ai.base import FloatArray
from veriot.ai.multivariate import Hotelling
from veriot.core.errors import InputError, InsufficientDataError

FAILURE_SCORE = 0.8
"""Health index 20: where the machine is treated as failed for remaining-life purposes."""
MIN_ROWS = 20


@dataclass(frozen=True, slots=True)
class Health:
    index: float
    rul_estimate_s: float | None
    contributing: list[str]
    score: float


def machine_health(
    times: npt.ArrayLike,
    rows: npt.ArrayLike,
    names: Sequence[str],
    recent: int = 30,
) -> Health:
    """Health of a machine from its multivariate readings (rows aligned with `names`).

    Preconditions: at least MIN_ROWS rows in time order. Raises InputError otherwise.
    """
    x = np.asarray(rows, dtype=np.float64)
    t = np.asarray(times, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != len(names) or t.shape[0] != x.shape[0]:
        raise InputError(f"rows {x.shape} do not match {len(names)} names and {t.shape[0]} times")
    if x.shape[0] < MIN_ROWS:
        raise InsufficientDataError(
            f"machine health needs at least {MIN_ROWS} rows; got {x.shape[0]}"
        )
    warmup = min(Hotelling().warmup, x.shape[0] // 2)
    model = Hotelling(warmup=warmup)
    scores = np.array([model.step(row) for row in x])
    tail = slice(max(warmup, x.shape[0] - recent), x.shape[0])
    score = float(np.mean(scores[tail]))
    contrib = np.mean([model.contributions(row) for row in x[tail]], axis=0)
    order = np.argsort(-contrib, kind="stable")
    contributing = [names[i] for i in order[:3].tolist() if contrib[i] > 1.0]
    return Health(round(100.0 * (1.0 - score), 2), _rul(t[tail], scores[tail]), contributing, score)


def _rul(t: FloatArray, s: FloatArray) -> float | None:
    if t.shape[0] < 3 or t[-1] <= t[0]:
        return None
    slope, intercept = np.polyfit(t - t[-1], s, 1)
    if slope <= 0:
        return None
    now = float(intercept)
    if now >= FAILURE_SCORE:
        return 0.0
    return float((FAILURE_SCORE - now) / slope)
