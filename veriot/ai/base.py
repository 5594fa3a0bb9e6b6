"""The detector interface: a streaming model per sensor, in the manner of River.

    score_one(x, t) -> float in [0, 1]   how anomalous x at time t is, given the past
    learn_one(x, t)                      fold x into the state
    step(x, t) = score_one then learn_one
    score_series(times, values)          the vectorised path: a (T, K) array of K sensors
                                         scored from a fresh state, row by row, causally

A detector's constructor arguments are its whole configuration, so `clone()` rebuilds
it and `version_hash()` names it (the hash covers the configuration and the code version).
A missing value (NaN) scores 0.0 and is not learnt.
"""

from __future__ import annotations

import hashlib
import json
import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar, Self

import numpy as np
import numpy.typing as npt

from veriot.core.errors import InputError

FloatArray = npt.NDArray[np.float64]

ALGORITHM_VERSION = "1"
"""Bumped whenever a detector's arithmetic changes, so old alert hashes stay meaningful."""

DEFAULT_THRESHOLD = 0.5
"""Every detector maps its statistic so that 0.5 is its frozen decision point."""


def squash(z: float, half: float) -> float:
    """Maps a non-negative statistic to [0, 1): z**2 / (z**2 + half**2); 0.5 at z == half."""
    z2 = z * z
    return z2 / (z2 + half * half) if math.isfinite(z2) else 1.0


def squash_array(z: FloatArray, half: float) -> FloatArray:
    z2 = np.square(np.nan_to_num(z, nan=0.0, posinf=1e150))
    out: FloatArray = z2 / (z2 + half * half)
    return out


def config_hash(name: str, params: dict[str, Any]) -> str:
    """Hex SHA-256 of a detector's canonical JSON configuration and the algorithm version."""
    body = json.dumps(
        {"detector": name, "version": ALGORITHM_VERSION, "params": params},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(body.encode()).hexdigest()


class Detector(ABC):
    """A univariate streaming detector for one sensor. Subclasses set `name`."""

    __slots__ = ()  # so that a subclass may keep its per-sensor state in slots
    name: ClassVar[str]

    @abstractmethod
    def params(self) -> dict[str, Any]:
        """The constructor arguments: `type(self)(**self.params())` is a fresh clone."""

    @abstractmethod
    def score_one(self, x: float, t: float = 0.0) -> float:
        """Score of `x` at time `t` (seconds) against the state; does not learn."""

    @abstractmethod
    def learn_one(self, x: float, t: float = 0.0) -> None:
        """Folds `x` into the state. Precondition: times are non-decreasing."""

    def step(self, x: float, t: float = 0.0) -> float:
        score = self.score_one(x, t)
        self.learn_one(x, t)
        return score

    def step_many(self, values: Sequence[float], times: Sequence[float]) -> list[float]:
        """`step` of each value at its time, in order; the scores. Requires as many times
        as values. Subclasses may override with the same arithmetic in one loop."""
        return [self.step(x, t) for x, t in zip(values, times, strict=True)]

    def clone(self) -> Self:
        return type(self)(**self.params())

    def version_hash(self) -> str:
        return config_hash(self.name, self.params())

    def score_series(self, times: FloatArray, values: FloatArray) -> FloatArray:
        """Scores a (T,) or (T, K) array row by row from a fresh state per column.

        Precondition: `times` has T non-decreasing entries. Does not touch `self`'s state.
        Subclasses may override with an equivalent vectorised computation.
        """
        times, values2d = check_series(times, values)
        out = np.zeros(values2d.shape)
        for k in range(values2d.shape[1]):
            model = self.clone()
            column = values2d[:, k].tolist()
            out[:, k] = [model.step(x, t) for x, t in zip(column, times.tolist(), strict=True)]
        return out.reshape(np.shape(values))


class MultivariateDetector(ABC):
    """A streaming detector over a vector of a machine's sensors (fixed dimension)."""

    name: ClassVar[str]

    @abstractmethod
    def params(self) -> dict[str, Any]: ...

    @abstractmethod
    def score_one(self, x: FloatArray) -> float: ...

    @abstractmethod
    def learn_one(self, x: FloatArray) -> None: ...

    def step(self, x: FloatArray) -> float:
        score = self.score_one(x)
        self.learn_one(x)
        return score

    def clone(self) -> Self:
        return type(self)(**self.params())

    def version_hash(self) -> str:
        return config_hash(self.name, self.params())

    def score_series(self, times: FloatArray, values: FloatArray) -> FloatArray:
        """Scores the rows of a (T, D) array from a fresh state; returns (T,)."""
        times, values2d = check_series(times, values)
        model = self.clone()
        return np.array([model.step(row) for row in values2d], dtype=np.float64)


def check_series(times: FloatArray, values: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Validates a series and returns (times, values as (T, K)). Raises InputError."""
    t = np.asarray(times, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    if v.ndim == 1:
        v = v[:, None]
    if v.ndim != 2 or t.ndim != 1 or t.shape[0] != v.shape[0]:
        raise InputError(f"times {t.shape} and values {v.shape} do not describe one series")
    if t.size and (not np.all(np.isfinite(t)) or np.any(np.diff(t) < 0)):
        raise InputError("times must be finite and non-decreasing")
    return t, v
