"""Device trust grades, A (best) to F, from a device's security signals.

The grade starts from 100 and loses points per kind of signal, by its rate per 1000
readings (so a busy device is not punished for being busy) with a floor per event for
the kinds that are never innocent (equivocation, bad signatures, wrong keys). Letters:
A >= 90, B >= 80, C >= 70, D >= 60, E >= 50, F below.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from veriot.core.types import SecurityEventKind

# SenML units (RFC 8428 and the IANA registry) and the values physics allows.
PLAUSIBLE: Final[dict[str, tuple[float, float]]] = {
    "Cel": (-90.0, 150.0),
    "K": (183.0, 423.0),
    "%RH": (0.0, 100.0),
    "%": (0.0, 100.0),
    "%EL": (0.0, 100.0),
    "/": (0.0, 1.0),
    "W": (0.0, math.inf),
    "VA": (0.0, math.inf),
    "J": (0.0, math.inf),
    "kWh": (0.0, math.inf),
    "Wh": (0.0, math.inf),
    "A": (-1e5, 1e5),
    "V": (-1e6, 1e6),
    "Hz": (0.0, math.inf),
    "Pa": (0.0, 1e9),
    "hPa": (0.0, 1e7),
    "m3": (0.0, math.inf),
    "l": (0.0, math.inf),
    "m3/s": (-1e6, 1e6),
    "l/s": (-1e9, 1e9),
    "lx": (0.0, 2e5),
    "pH": (0.0, 14.0),
    "dB": (-200.0, 300.0),
    "lat": (-90.0, 90.0),
    "lon": (-180.0, 180.0),
    "count": (0.0, math.inf),
    "m/s": (-1e4, 1e4),
    "beat/min": (0.0, 400.0),
    "ppm": (0.0, 1e6),
}


def is_plausible(unit: str, value: float) -> bool:
    """False when `value` is not finite or outside the physical range of `unit`.
    Units without a known range accept any finite value. (Written for mypyc, which
    compiles isnan, isinf and the comparisons to machine code: alert scoring calls this
    for every record the log stores.)"""
    if math.isnan(value) or math.isinf(value):
        return False
    bounds = PLAUSIBLE.get(unit)
    return bounds is None or bounds[0] <= value <= bounds[1]


@dataclass(frozen=True, slots=True)
class TrustSignals:
    """Counts over one observation period. `drift` is in [0, 1]: the share of the
    device's sensors whose detector reports a drift (or the largest drift score)."""

    readings: int
    events: Mapping[SecurityEventKind, int] = field(default_factory=dict)
    impossible_values: int = 0
    drift: float = 0.0


@dataclass(frozen=True, slots=True)
class Grade:
    letter: str
    score: float
    reasons: list[str]


# (points per event per 1000 readings, minimum points per event)
_WEIGHTS: Final[dict[SecurityEventKind, tuple[float, float]]] = {
    SecurityEventKind.EQUIVOCATION: (100.0, 25.0),
    SecurityEventKind.BAD_SIGNATURE: (50.0, 5.0),
    SecurityEventKind.WRONG_KEY: (50.0, 5.0),
    SecurityEventKind.REVOKED_DEVICE: (50.0, 10.0),
    SecurityEventKind.REPLAY: (20.0, 1.0),
    SecurityEventKind.IMPOSSIBLE_VALUE: (20.0, 0.5),
    SecurityEventKind.SEQUENCE_GAP: (5.0, 0.0),
    SecurityEventKind.CLOCK_SKEW: (5.0, 0.0),
    SecurityEventKind.UNKNOWN_DEVICE: (0.0, 0.0),
}
_CAP: Final = 40.0  # one kind of signal alone can cost at most this many points
_LETTERS: Final = ((90.0, "A"), (80.0, "B"), (70.0, "C"), (60.0, "D"), (50.0, "E"))


def _penalty(kind: SecurityEventKind, count: int, per_k: float) -> float:
    rate_weight, floor = _WEIGHTS[kind]
    return min(_CAP, max(count * floor, rate_weight * count / per_k))


def trust_grade(signals: TrustSignals) -> Grade:
    per_k = max(signals.readings, 1) / 1000.0
    score = 100.0
    reasons: list[str] = []
    counts = dict(signals.events)
    if signals.impossible_values:
        kind = SecurityEventKind.IMPOSSIBLE_VALUE
        counts[kind] = max(counts.get(kind, 0), signals.impossible_values)
    for kind in SecurityEventKind:
        count = counts.get(kind, 0)
        if count <= 0:
            continue
        lost = _penalty(kind, count, per_k)
        if lost > 0:
            score -= lost
            reasons.append(
                f"{count} {kind.value.replace('_', ' ')} event(s) in "
                f"{signals.readings} readings: -{lost:.1f}"
            )
    drift = min(max(signals.drift, 0.0), 1.0) if math.isfinite(signals.drift) else 1.0
    if drift > 0:
        lost = 20.0 * drift
        score -= lost
        reasons.append(f"sensor drift {drift:.2f}: -{lost:.1f}")
    score = max(0.0, score)
    letter = next((letter for bound, letter in _LETTERS if score >= bound), "F")
    if not reasons:
        reasons.append("no security signal against this device")
    return Grade(letter, round(score, 1), reasons)
