"""A seeded synthetic suite: daily-seasonal sensor series with injected anomalies.

Six kinds, each a failure seen on real sensors: `spike` (three isolated outliers),
`level_shift`, `drift` (a ramp), `stuck` (the value freezes), `noise` (the noise grows
fourfold) and `seasonality` (the daily pattern disappears). Series are 7 days at 5-minute
steps with AR(1) noise; a series' anomalies all start after its first half. Each onset
opens a NAB window of NAB's width (10% of the rows over the number of anomalies); the
labels cover each anomaly's extent, or its window for changes that persist.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from veriot.ai.base import FloatArray

KINDS = ("spike", "level_shift", "drift", "stuck", "noise", "seasonality")
STEP = 300.0
ROWS = 7 * 288
START = 1_700_000_000.0 - (1_700_000_000.0 % 86400)


@dataclass(frozen=True, slots=True)
class LabelledSeries:
    name: str
    kind: str
    times: FloatArray
    values: FloatArray
    labels: npt.NDArray[np.bool_]
    onsets: tuple[int, ...]


def _base(
    rng: np.random.Generator, seasonal: bool
) -> tuple[FloatArray, FloatArray, FloatArray, float]:
    t: FloatArray = START + STEP * np.arange(ROWS, dtype=np.float64)
    sigma = float(rng.uniform(0.5, 5.0))
    phi = 0.5
    eps = rng.normal(0.0, sigma, ROWS)
    noise = np.empty(ROWS)
    noise[0] = eps[0]
    for i in range(1, ROWS):
        noise[i] = phi * noise[i - 1] + eps[i]
    sd = sigma / np.sqrt(1 - phi * phi)
    amplitude = float(rng.uniform(3.0, 6.0)) * sd if seasonal else 0.0
    phase = float(rng.uniform(0, 2 * np.pi))
    season: FloatArray = amplitude * np.sin(2 * np.pi * t / 86400.0 + phase)
    level = float(rng.uniform(-100.0, 100.0))
    values: FloatArray = level + season + noise
    return t, values, season, sd


def make_series(kind: str, seed: int) -> LabelledSeries:
    """One labelled series of `kind` (see KINDS), fully determined by `seed`."""
    rng = np.random.default_rng([seed, KINDS.index(kind)])
    seasonal = kind == "seasonality" or seed % 2 == 0
    t, x, season, sd = _base(rng, seasonal)
    labels = np.zeros(ROWS, dtype=bool)
    count = 3 if kind == "spike" else 1
    width = int(0.1 * ROWS / count)
    onsets = sorted(
        int(o) for o in rng.choice(np.arange(ROWS // 2, ROWS - width), count, replace=False)
    )
    if kind == "spike":
        onsets = [ROWS // 2 + i * width + int(rng.integers(0, width // 2)) for i in range(3)]
    sign = 1.0 if rng.random() < 0.5 else -1.0
    o = onsets[0]
    if kind == "spike":
        for on in onsets:
            x[on] += sign * float(rng.uniform(6.0, 10.0)) * sd
            labels[on] = True
    elif kind == "level_shift":
        x[o:] += sign * float(rng.uniform(3.0, 5.0)) * sd
        labels[o : o + width] = True
    elif kind == "drift":
        ramp = np.minimum(np.arange(ROWS - o), 200) / 200.0
        x[o:] += sign * float(rng.uniform(5.0, 8.0)) * sd * ramp
        labels[o : o + width] = True
    elif kind == "stuck":
        x[o : o + 200] = x[o - 1]
        labels[o : o + 200] = True
    elif kind == "noise":
        x[o : o + 200] += rng.normal(0.0, 3.0 * sd, 200)
        labels[o : o + 200] = True
    elif kind == "seasonality":
        # the daily pattern stops for a day; level and noise go on
        x[o : o + 288] -= season[o : o + 288]
        labels[o : o + 288] = True
    else:
        raise ValueError(f"unknown kind {kind!r}; want one of {', '.join(KINDS)}")
    return LabelledSeries(f"{kind}-{seed}", kind, t, x, labels, tuple(onsets))


def synthetic_suite(seeds: int = 4) -> list[LabelledSeries]:
    """`seeds` series of every kind (6 * seeds series)."""
    return [make_series(kind, seed) for kind in KINDS for seed in range(seeds)]
