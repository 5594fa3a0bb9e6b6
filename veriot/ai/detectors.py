"""Univariate streaming detectors and the registry that names them.

    seasonal   (default) forecast residual against a level plus a time-of-day profile,
               a drift statistic on the residual's fast mean, and a volatility ratio that
               catches noise changes and stuck sensors. Linear filters only, so the
               vectorised path (`score_series`) runs them with scipy.signal.lfilter.
    robust_z   Huber-clipped exponentially weighted level and absolute deviation.
    knn        distance of the last few values (a delay embedding) to their nearest
               neighbour among recent embeddings, relative to its usual distance.

Every setting is a frozen constant chosen by `veriot ai evaluate`; nothing is fitted to
labels at run time.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Sequence
from typing import Any, ClassVar, Final

import numpy as np
import numpy.typing as npt
from mypy_extensions import mypyc_attr
from scipy.signal import lfilter

from veriot.ai.base import Detector, FloatArray, check_series, squash, squash_array

# Final, so that compiled code reads them as constants rather than from the module's dict
DAY: Final = 86400.0
SEASON_BINS: Final = 48  # half-hour bins of the day: enough shape, small state
_BIN_S: Final = DAY / SEASON_BINS
_MAD_TO_SIGMA: Final = 1.2533  # E|N(0, s)| = s * sqrt(2 / pi)


@mypyc_attr(allow_interpreted_subclasses=True)
class SeasonalEW(Detector):
    """Residual, drift and volatility statistics from exponentially weighted filters.

    Each statistic is squashed so that its `*_half` value maps to 0.5; the score is the
    largest. The first `warmup` finite points of a sensor score 0.
    """

    # Slots rather than a __dict__: this object is the state kept per live sensor.
    __slots__ = (
        "_drift_h2",
        "_drift_sd",
        "_spike_h2",
        "_vol_h2",
        "drift_alpha",
        "drift_half",
        "fr",
        "fw",
        "level_alpha",
        "lv",
        "lw",
        "n",
        "prev",
        "sc",
        "scale_alpha",
        "season",
        "season_alpha",
        "season_w",
        "spike_half",
        "sw",
        "vf",
        "vfw",
        "vol_fast_alpha",
        "vol_half",
        "vol_slow_alpha",
        "vs",
        "vsw",
        "warmup",
    )
    name: ClassVar[str] = "seasonal"

    def __init__(
        self,
        level_alpha: float = 0.01,
        season_alpha: float = 0.1,
        scale_alpha: float = 0.01,
        drift_alpha: float = 0.05,
        vol_fast_alpha: float = 0.1,
        vol_slow_alpha: float = 0.01,
        spike_half: float = 5.0,
        drift_half: float = 7.0,
        vol_half: float = 1.4,
        warmup: int = 30,
    ) -> None:
        self.level_alpha, self.season_alpha = level_alpha, season_alpha
        self.scale_alpha = scale_alpha
        self.drift_alpha = drift_alpha
        self.vol_fast_alpha, self.vol_slow_alpha = vol_fast_alpha, vol_slow_alpha
        self.spike_half, self.drift_half, self.vol_half = spike_half, drift_half, vol_half
        self.warmup = warmup
        # the fast mean of white residuals has this many residual sigmas of spread
        self._drift_sd = math.sqrt(drift_alpha / (2.0 - drift_alpha))
        self._spike_h2 = spike_half * spike_half
        self._drift_h2 = drift_half * drift_half
        self._vol_h2 = vol_half * vol_half
        self.n = 0
        self.prev = 0.0
        # (sum, weight) pairs of bias-corrected exponentially weighted means
        self.lv = self.lw = self.sc = self.sw = self.fr = self.fw = 0.0
        self.vf = self.vfw = self.vs = self.vsw = 0.0
        self.season = array("d", bytes(8 * SEASON_BINS))
        self.season_w = array("d", bytes(8 * SEASON_BINS))

    def params(self) -> dict[str, Any]:
        return {
            "level_alpha": self.level_alpha,
            "season_alpha": self.season_alpha,
            "scale_alpha": self.scale_alpha,
            "drift_alpha": self.drift_alpha,
            "vol_fast_alpha": self.vol_fast_alpha,
            "vol_slow_alpha": self.vol_slow_alpha,
            "spike_half": self.spike_half,
            "drift_half": self.drift_half,
            "vol_half": self.vol_half,
            "warmup": self.warmup,
        }

    def _evaluate(self, x: float, t: float) -> tuple[float, tuple[float, ...]]:
        b = int((t % DAY) // (DAY / SEASON_BINS))
        level = self.lv / self.lw if self.lw > 0 else x
        sw = self.season_w[b]
        pred = level + (self.season[b] / sw if sw > 0 else 0.0)
        r = x - pred
        floor = 1e-6 * abs(level) + 1e-12
        scale = _MAD_TO_SIGMA * (self.sc / self.sw if self.sw > 0 else 0.0) + floor
        a = self.drift_alpha
        fr, fw = (1 - a) * self.fr + a * r, (1 - a) * self.fw + a
        d = abs(x - self.prev) if self.n > 0 else 0.0
        a = self.vol_fast_alpha
        vf, vfw = (1 - a) * self.vf + a * d, (1 - a) * self.vfw + a
        score = 0.0
        if self.n >= self.warmup:
            vs = self.vs / self.vsw if self.vsw > 0 else 0.0
            z_vol = abs(math.log((vf / vfw + floor) / (vs + floor)))
            score = max(
                squash(abs(r) / scale, self.spike_half),
                squash(abs(fr / fw) / (scale * self._drift_sd), self.drift_half),
                squash(z_vol, self.vol_half),
            )
        return score, (b, level, r, d, fr, fw, vf, vfw)

    def score_one(self, x: float, t: float = 0.0) -> float:
        if not math.isfinite(x):
            return 0.0
        return self._evaluate(x, t)[0]

    def learn_one(self, x: float, t: float = 0.0) -> None:
        if math.isfinite(x):
            self._learn(x, self._evaluate(x, t)[1])

    def step(self, x: float, t: float = 0.0) -> float:
        return self.step_many((x,), (t,))[0]

    def step_many(self, values: Sequence[float], times: Sequence[float]) -> list[float]:
        # `_evaluate` then `_learn` for each value, inlined: the same operations in the
        # same order (so the same scores, bit for bit), with the state in locals for the
        # whole run and no tuple or call between the two halves. This is the per-record
        # path of the live service, which hands each sensor's run of a commit over at once.
        # Compiled, math.isnan, math.isinf and math.log run as machine code, and the
        # seasonal profile is read and written as lists (an array's items go through
        # generic subscripts); it is stored back as arrays at the end.
        lv, lw, sc, sw, fr, fw = self.lv, self.lw, self.sc, self.sw, self.fr, self.fw
        vf, vfw, vs, vsw, prev, n = self.vf, self.vfw, self.vs, self.vsw, self.prev, self.n
        season, season_w = self.season.tolist(), self.season_w.tolist()
        level_a, season_a, scale_a = self.level_alpha, self.season_alpha, self.scale_alpha
        drift_a, fast_a, slow_a = self.drift_alpha, self.vol_fast_alpha, self.vol_slow_alpha
        warmup, drift_sd = self.warmup, self._drift_sd
        spike_h2, drift_h2, vol_h2 = self._spike_h2, self._drift_h2, self._vol_h2
        inf = math.inf
        scores: list[float] = []
        for x, t in zip(values, times, strict=True):
            if math.isnan(x) or math.isinf(x):
                scores.append(0.0)
                continue
            b = int((t % DAY) // _BIN_S)
            level = lv / lw if lw > 0 else x
            sb, swb = season[b], season_w[b]
            r = x - (level + (sb / swb if swb > 0 else 0.0))
            floor = 1e-6 * abs(level) + 1e-12
            scale = _MAD_TO_SIGMA * (sc / sw if sw > 0 else 0.0) + floor
            a = drift_a
            fr, fw = (1 - a) * fr + a * r, (1 - a) * fw + a
            d = abs(x - prev) if n > 0 else 0.0
            a = fast_a
            vf, vfw = (1 - a) * vf + a * d, (1 - a) * vfw + a
            score = 0.0
            if n >= warmup:
                z_vol = abs(math.log((vf / vfw + floor) / ((vs / vsw if vsw > 0 else 0.0) + floor)))
                # squash() of each statistic, inlined; the score is the largest
                z = abs(r) / scale
                z2 = z * z
                score = z2 / (z2 + spike_h2) if z2 < inf else 1.0
                z = abs(fr / fw) / (scale * drift_sd)
                z2 = z * z
                s2 = z2 / (z2 + drift_h2) if z2 < inf else 1.0
                if s2 > score:
                    score = s2
                z2 = z_vol * z_vol
                s2 = z2 / (z2 + vol_h2) if z2 < inf else 1.0
                if s2 > score:
                    score = s2
            a = level_a
            lv, lw = (1 - a) * lv + a * x, (1 - a) * lw + a
            a = season_a
            season[b] = (1 - a) * sb + a * (x - level)
            season_w[b] = (1 - a) * swb + a
            a = scale_a
            sc, sw = (1 - a) * sc + a * abs(r), (1 - a) * sw + a
            a = slow_a
            vs, vsw = (1 - a) * vs + a * d, (1 - a) * vsw + a
            prev = x
            n += 1
            scores.append(score)
        self.lv, self.lw, self.sc, self.sw, self.fr, self.fw = lv, lw, sc, sw, fr, fw
        self.vf, self.vfw, self.vs, self.vsw, self.prev, self.n = vf, vfw, vs, vsw, prev, n
        self.season, self.season_w = array("d", season), array("d", season_w)
        return scores

    def _learn(self, x: float, facts: tuple[float, ...]) -> None:
        b_f, level, r, d, self.fr, self.fw, self.vf, self.vfw = facts
        b = int(b_f)
        a = self.level_alpha
        self.lv, self.lw = (1 - a) * self.lv + a * x, (1 - a) * self.lw + a
        a = self.season_alpha
        self.season[b] = (1 - a) * self.season[b] + a * (x - level)
        self.season_w[b] = (1 - a) * self.season_w[b] + a
        a = self.scale_alpha
        self.sc, self.sw = (1 - a) * self.sc + a * abs(r), (1 - a) * self.sw + a
        a = self.vol_slow_alpha
        self.vs, self.vsw = (1 - a) * self.vs + a * d, (1 - a) * self.vsw + a
        self.prev = x
        self.n += 1

    def score_series(self, times: FloatArray, values: FloatArray) -> FloatArray:
        """The same arithmetic as repeated `step` calls, run as linear filters over time."""
        times, values2d = check_series(times, values)
        out = np.zeros(values2d.shape)
        for k in range(values2d.shape[1]):
            column = values2d[:, k]
            ok = np.isfinite(column)
            if ok.any():
                out[ok, k] = self._score_column(times[ok], column[ok])
        return out.reshape(np.shape(values))

    def _score_column(self, t: FloatArray, x: FloatArray) -> FloatArray:
        n = x.shape[0]
        level = _ew_before(x, self.level_alpha)
        level[0] = x[0]
        bins = ((t % DAY) // (DAY / SEASON_BINS)).astype(np.int64)
        season = _ew_before_grouped(x - level, bins, self.season_alpha)
        r = x - (level + season)
        floor = 1e-6 * np.abs(level) + 1e-12
        scale = _MAD_TO_SIGMA * _ew_before(np.abs(r), self.scale_alpha) + floor
        fast = _ew_incl(r, self.drift_alpha)
        d = np.zeros(n)
        d[1:] = np.abs(np.diff(x))
        vf = _ew_incl(d, self.vol_fast_alpha)
        vs = _ew_before(d, self.vol_slow_alpha)
        z_vol = np.abs(np.log((vf + floor) / (vs + floor)))
        score: FloatArray = np.maximum.reduce(
            [
                squash_array(np.abs(r) / scale, self.spike_half),
                squash_array(np.abs(fast) / (scale * self._drift_sd), self.drift_half),
                squash_array(z_vol, self.vol_half),
            ]
        )
        score[: self.warmup] = 0.0
        return score


def _ew_raw(x: FloatArray, alpha: float) -> tuple[FloatArray, FloatArray]:
    """Inclusive exponentially weighted sums and their weights (bias correction)."""
    b, a = [alpha], [1.0, -(1.0 - alpha)]
    s: FloatArray = lfilter(b, a, x)
    w: FloatArray = lfilter(b, a, np.ones_like(x))
    return s, w


def _ew_incl(x: FloatArray, alpha: float) -> FloatArray:
    s, w = _ew_raw(x, alpha)
    out: FloatArray = s / w
    return out


def _ew_before(x: FloatArray, alpha: float) -> FloatArray:
    """The bias-corrected mean of x[:i] at each i (0 where there is nothing before)."""
    s, w = _ew_raw(x, alpha)
    out = np.zeros_like(x)
    out[1:] = s[:-1] / w[:-1]
    return out


def _ew_before_grouped(x: FloatArray, groups: npt.NDArray[np.int64], alpha: float) -> FloatArray:
    """`_ew_before` within each group (same group value), in time order."""
    order = np.argsort(groups, kind="stable")
    sx, sg = x[order], groups[order]
    starts = np.flatnonzero(np.r_[True, sg[1:] != sg[:-1]])
    ends = np.r_[starts[1:], sx.shape[0]]
    s = np.empty_like(sx)
    w = np.empty_like(sx)
    for lo, hi in zip(starts.tolist(), ends.tolist(), strict=True):
        s[lo:hi], w[lo:hi] = _ew_raw(sx[lo:hi], alpha)
    before = np.zeros_like(sx)
    before[1:] = s[:-1] / w[:-1]
    before[starts] = 0.0
    out = np.empty_like(x)
    out[order] = before
    return out


@mypyc_attr(allow_interpreted_subclasses=True)
class RobustZ(Detector):
    """Huber-clipped EW level and absolute deviation: robust to the spikes it reports."""

    name: ClassVar[str] = "robust_z"

    def __init__(
        self, alpha: float = 0.02, clip: float = 3.0, half: float = 6.0, warmup: int = 20
    ) -> None:
        self.alpha, self.clip, self.half, self.warmup = alpha, clip, half, warmup
        self.n = 0
        self.level = 0.0
        self.dev = 0.0

    def params(self) -> dict[str, Any]:
        return {"alpha": self.alpha, "clip": self.clip, "half": self.half, "warmup": self.warmup}

    def _floor(self) -> float:
        return 1e-6 * abs(self.level) + 1e-12

    def score_one(self, x: float, t: float = 0.0) -> float:
        if not math.isfinite(x) or self.n < self.warmup:
            return 0.0
        z = abs(x - self.level) / (_MAD_TO_SIGMA * self.dev + self._floor())
        return squash(z, self.half)

    def learn_one(self, x: float, t: float = 0.0) -> None:
        if not math.isfinite(x):
            return
        self.n += 1
        if self.n == 1:
            self.level = x
            return
        # running mean while young, then exponential forgetting
        a = max(self.alpha, 1.0 / self.n)
        r = x - self.level
        limit = math.inf
        if self.n > self.warmup:
            limit = self.clip * _MAD_TO_SIGMA * self.dev + self._floor()
        r_clipped = min(max(r, -limit), limit)
        self.level += a * r_clipped
        self.dev = (1 - a) * self.dev + a * abs(r_clipped)


@mypyc_attr(allow_interpreted_subclasses=True)
class KnnDistance(Detector):
    """Nearest-neighbour distance of a delay embedding to recent embeddings."""

    name: ClassVar[str] = "knn"

    def __init__(
        self,
        dim: int = 4,
        memory: int = 64,
        alpha: float = 0.02,
        half: float = 4.0,
        warmup: int = 40,
    ) -> None:
        self.dim, self.memory, self.alpha, self.half, self.warmup = dim, memory, alpha, half, warmup
        self.n = 0
        self.recent = np.zeros(dim)
        self.buffer = np.zeros((memory, dim))
        self.stored = 0
        self.pos = 0
        self.mean_dist = 0.0
        self.mean_w = 0.0

    def params(self) -> dict[str, Any]:
        return {
            "dim": self.dim,
            "memory": self.memory,
            "alpha": self.alpha,
            "half": self.half,
            "warmup": self.warmup,
        }

    def _embed(self, x: float) -> FloatArray:
        e = np.empty(self.dim)
        e[:-1] = self.recent[1:]
        e[-1] = x
        return e

    def _distance(self, e: FloatArray) -> float:
        if self.stored == 0:
            return 0.0
        diff = self.buffer[: self.stored] - e
        return float(np.sqrt(np.min(np.einsum("ij,ij->i", diff, diff))))

    def score_one(self, x: float, t: float = 0.0) -> float:
        if not math.isfinite(x) or self.n < self.warmup or self.mean_w == 0:
            return 0.0
        d = self._distance(self._embed(x))
        floor = 1e-6 * abs(x) + 1e-12
        return squash(d / (self.mean_dist / self.mean_w + floor), self.half)

    def learn_one(self, x: float, t: float = 0.0) -> None:
        if not math.isfinite(x):
            return
        e = self._embed(x)
        if self.n >= self.dim:
            d = self._distance(e)
            self.mean_dist = (1 - self.alpha) * self.mean_dist + self.alpha * d
            self.mean_w = (1 - self.alpha) * self.mean_w + self.alpha
            self.buffer[self.pos] = e
            self.pos = (self.pos + 1) % self.memory
            self.stored = min(self.stored + 1, self.memory)
        self.recent = e
        self.n += 1
