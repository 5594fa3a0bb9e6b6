"""How each kind of simulated device behaves, with occasional real anomalies.

Pure: a profile maps (time, random state) to SenML records. Anomalies are what the
detectors should find: a reefer door left open (temperature climbs), a meter spike,
a failing bearing (vibration level shift and drift).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from veriot.core.types import Record

DEVICE_TYPES = ("cold-chain", "meter", "machine")


@dataclass
class DeviceState:
    """Per-device simulation state: a random stream and any anomaly in progress."""

    kind: str
    rng: random.Random
    phase: float
    anomaly_left: int = 0
    anomaly_kind: str = ""
    drift: float = 0.0
    base: dict[str, float] = field(default_factory=dict)

    @classmethod
    def create(cls, kind: str, seed: int) -> DeviceState:
        rng = random.Random(seed)
        return cls(kind=kind, rng=rng, phase=rng.uniform(0, 2 * math.pi))


ANOMALY_RATE = 0.002
"""Chance per reading that an anomaly starts."""


def _maybe_start_anomaly(
    state: DeviceState, kinds: tuple[str, ...], length: tuple[int, int]
) -> None:
    if state.anomaly_left == 0 and state.rng.random() < ANOMALY_RATE:
        state.anomaly_kind = state.rng.choice(kinds)
        state.anomaly_left = state.rng.randint(*length)


def records_for(state: DeviceState, now: float) -> tuple[Record, ...]:
    """The records one reading of this device carries at time `now`."""
    rng = state.rng
    if state.kind == "cold-chain":
        _maybe_start_anomaly(state, ("door-open", "compressor-fault"), (5, 30))
        temp = 4.0 + 0.3 * math.sin(now / 600 + state.phase) + rng.gauss(0, 0.08)
        if state.anomaly_left:
            state.anomaly_left -= 1
            temp += 6.0 if state.anomaly_kind == "door-open" else 2.5
        humidity = 85 + rng.gauss(0, 1.5)
        return (
            Record("temperature", round(temp, 3), now, "Cel"),
            Record("humidity", round(min(100.0, max(0.0, humidity)), 2), now, "%RH"),
        )
    if state.kind == "meter":
        _maybe_start_anomaly(state, ("spike", "outage"), (1, 6))
        day = 2 * math.pi * (now % 86_400) / 86_400
        power = 1200 + 800 * math.sin(day - math.pi / 2 + state.phase) + rng.gauss(0, 40)
        if state.anomaly_left:
            state.anomaly_left -= 1
            power = power * 4 if state.anomaly_kind == "spike" else 0.0
        voltage = 230 + rng.gauss(0, 1.2)
        return (
            Record("power", round(max(0.0, power), 1), now, "W"),
            Record("voltage", round(voltage, 2), now, "V"),
        )
    _maybe_start_anomaly(state, ("bearing", "overheat"), (20, 80))
    vibration = 0.02 + rng.gauss(0, 0.002) + state.drift
    temperature = 60 + rng.gauss(0, 0.4)
    current = 1.3 + rng.gauss(0, 0.02)
    if state.anomaly_left:
        state.anomaly_left -= 1
        if state.anomaly_kind == "bearing":
            vibration += 0.03
            state.drift += 0.0002
        else:
            temperature += 15
            current += 0.4
    return (
        Record("vibration", round(vibration, 5), now, "m/s2"),
        Record("temperature", round(temperature, 3), now, "Cel"),
        Record("current", round(current, 4), now, "A"),
    )
