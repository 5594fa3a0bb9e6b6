"""Throughput and state size of the default detector against River's HalfSpaceTrees.

Both score the same stream in the same run (score, then learn, per point). Prints points
per second of each and their ratio, for our per-point streaming path and for the
vectorised path (`score_series`), and the default detector's state size per sensor.

    .venv/bin/python bench/detect.py [--points N]
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from veriot.ai.detectors import SeasonalEW


def _state_bytes(d: SeasonalEW) -> int:
    """The object (its slots), each number it holds, and the two seasonal profile arrays.
    Numbers shared by every sensor (the configuration) are counted anyway."""
    values = [getattr(d, name) for name in type(d).__slots__]
    numbers = sum(sys.getsizeof(v) for v in values if isinstance(v, float | int))
    return sys.getsizeof(d) + numbers + sys.getsizeof(d.season) + sys.getsizeof(d.season_w)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--points", type=int, default=50_000)
    n = parser.parse_args().points
    rng = np.random.default_rng(0)
    t = 1.7e9 + 60.0 * np.arange(n, dtype=np.float64)
    x = 20 + 5 * np.sin(2 * np.pi * t / 86400) + rng.normal(0, 1, n)
    xs, ts = x.tolist(), t.tolist()

    from river.anomaly import HalfSpaceTrees  # a dev dependency: the baseline only

    hst = HalfSpaceTrees(seed=1)
    lo, hi = float(x.min()), float(x.max())
    t0 = time.perf_counter()
    for v in xs:
        feat = {"value": (v - lo) / (hi - lo)}  # HST wants features in [0, 1]
        hst.score_one(feat)  # type: ignore[no-untyped-call]
        hst.learn_one(feat)  # type: ignore[no-untyped-call]
    river_rate = n / (time.perf_counter() - t0)

    det = SeasonalEW()
    t0 = time.perf_counter()
    for v, w in zip(xs, ts, strict=True):
        det.step(v, w)
    stream_rate = n / (time.perf_counter() - t0)

    big = np.tile(x, max(1, 1_000_000 // n))
    big_t = 1.7e9 + 60.0 * np.arange(big.size, dtype=np.float64)
    t0 = time.perf_counter()
    SeasonalEW().score_series(big_t, big)
    vector_rate = big.size / (time.perf_counter() - t0)

    print(f"points per run: {n} (vectorised: {big.size})")
    print(f"river HalfSpaceTrees      {river_rate:>14,.0f} points/s")
    print(
        f"seasonal, per point       {stream_rate:>14,.0f} points/s  "
        f"({stream_rate / river_rate:.1f}x river)"
    )
    print(
        f"seasonal, score_series    {vector_rate:>14,.0f} points/s  "
        f"({vector_rate / river_rate:.1f}x river)"
    )
    print(f"state per sensor          {_state_bytes(det):>14,d} bytes (target <= 2048)")


if __name__ == "__main__":
    main()
