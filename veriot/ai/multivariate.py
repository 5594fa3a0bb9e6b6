"""Multivariate detection for machines: Hotelling's T-squared against a learnt normal.

The detector smooths each sensor with an exponentially weighted mean (machine sensors
such as vibration RMS are noisy sample to sample), collects `warmup` rows as the
reference of normal operation, and then scores each smoothed row by its Mahalanobis
distance under a shrunk covariance of the reference. The score is T2 / (T2 + limit), so
it passes 0.5 where T2 crosses `limit_factor` times the reference's `limit_quantile`.
The reference is frozen after warm-up so that a lasting fault keeps being reported.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from veriot.ai.base import FloatArray, MultivariateDetector
from veriot.core.errors import InputError


class Hotelling(MultivariateDetector):
    name: ClassVar[str] = "hotelling"

    def __init__(
        self,
        warmup: int = 400,
        smoothing: float = 0.9,
        shrinkage: float = 0.3,
        limit_quantile: float = 0.99,
        limit_factor: float = 3.0,
    ) -> None:
        if warmup < 2:
            raise InputError(f"warmup must be at least 2 rows; got {warmup}")
        self.warmup, self.smoothing, self.shrinkage = warmup, smoothing, shrinkage
        self.limit_quantile, self.limit_factor = limit_quantile, limit_factor
        self.smoothed: FloatArray | None = None
        self.reference: list[FloatArray] = []
        self.mean: FloatArray | None = None
        self.std: FloatArray | None = None
        self.precision: FloatArray | None = None
        self.limit = 0.0

    def params(self) -> dict[str, Any]:
        return {
            "warmup": self.warmup,
            "smoothing": self.smoothing,
            "shrinkage": self.shrinkage,
            "limit_quantile": self.limit_quantile,
            "limit_factor": self.limit_factor,
        }

    @property
    def fitted(self) -> bool:
        return self.precision is not None

    def _smooth(self, x: FloatArray) -> FloatArray:
        x = np.asarray(x, dtype=np.float64)
        if self.smoothed is None:
            if self.reference and x.shape != self.reference[0].shape:
                raise InputError(f"row has {x.shape} values; want {self.reference[0].shape}")
            # a missing value at the start has nothing to stand in for it but 0
            return np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
        if x.shape != self.smoothed.shape:
            raise InputError(f"row has {x.shape[0]} values; want {self.smoothed.shape[0]}")
        # a missing value keeps the sensor's smoothed value: it is neither normal nor not
        x = np.where(np.isfinite(x), x, self.smoothed)
        out: FloatArray = self.smoothing * self.smoothed + (1.0 - self.smoothing) * x
        return out

    def t2(self, smoothed: FloatArray) -> float:
        """T-squared of a smoothed row. Precondition: `fitted`."""
        assert self.mean is not None and self.std is not None and self.precision is not None
        z = (smoothed - self.mean) / self.std
        return float(z @ self.precision @ z)

    def contributions(self, x: FloatArray) -> FloatArray:
        """Each sensor's squared standardised deviation in the smoothed row (0 if unfitted)."""
        if self.mean is None or self.std is None:
            return np.zeros(np.shape(x))
        z = (self._smooth(x) - self.mean) / self.std
        out: FloatArray = z * z
        return out

    def score_one(self, x: FloatArray) -> float:
        if not self.fitted:
            return 0.0
        t2 = self.t2(self._smooth(x))
        if not math.isfinite(t2):
            return 1.0
        return t2 / (t2 + self.limit)

    def learn_one(self, x: FloatArray) -> None:
        self.smoothed = self._smooth(x)
        if self.fitted:
            return
        self.reference.append(self.smoothed)
        if len(self.reference) >= self.warmup:
            self._fit(np.array(self.reference))
            self.reference = []

    def _fit(self, rows: FloatArray) -> None:
        self.mean = rows.mean(axis=0)
        # a constant sensor gets unit scale: any later change stands out, none divides by 0
        std = rows.std(axis=0)
        self.std = np.where(std > 1e-12 * (1.0 + np.abs(self.mean)), std, 1.0)
        z = (rows - self.mean) / self.std
        cov = np.atleast_2d(np.cov(z.T)) if rows.shape[1] > 1 else np.array([[z.var()]])
        cov = (1.0 - self.shrinkage) * cov + self.shrinkage * np.eye(cov.shape[0])
        precision: FloatArray = np.asarray(np.linalg.pinv(cov), dtype=np.float64)
        self.precision = precision
        t2 = np.sum((z @ precision) * z, axis=1)
        self.limit = max(float(np.quantile(t2, self.limit_quantile)) * self.limit_factor, 1e-9)
