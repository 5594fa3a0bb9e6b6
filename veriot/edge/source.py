"""Where the edge agent's readings come from: JSON lines, or a simulated fleet.

    {"device": "name-or-did", "records": [{"n": "temperature", "v": 4.2, "u": "Cel"}, ...]}

A record's time `t` (seconds since the epoch) is optional and defaults to when the line
was read; `u` is optional.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from typing import Any

from veriot.core.canonical import check_record
from veriot.core.errors import InputError
from veriot.core.types import Record
from veriot.simulate.profiles import DEVICE_TYPES, DeviceState, records_for


def parse_line(line: str, now: float) -> tuple[str, tuple[Record, ...]]:
    """(device, records) from one JSON line. Raises InputError naming the problem."""
    try:
        doc: Any = json.loads(line)
    except ValueError as exc:
        raise InputError(f"not JSON: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("device"), str):
        raise InputError('want {"device": "name-or-did", "records": [...]}')
    raw = doc.get("records")
    if not isinstance(raw, list) or not raw:
        raise InputError("`records` must be a non-empty list")
    records = []
    for i, r in enumerate(raw):
        if not isinstance(r, dict) or not isinstance(r.get("n"), str):
            raise InputError(f"records[{i}] needs a name `n`")
        value, at, unit = r.get("v"), r.get("t", now), r.get("u", "")
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise InputError(f"records[{i}].v must be a finite number; got {value!r}")
        if isinstance(at, bool) or not isinstance(at, int | float) or not isinstance(unit, str):
            raise InputError(f"records[{i}]: `t` must be a number and `u` a string")
        record = Record(r["n"], float(value), float(at), unit)
        check_record(record)
        records.append(record)
    return doc["device"], tuple(records)


def simulated(
    devices: list[str], rate: float, duration: float
) -> Iterator[tuple[str, tuple[Record, ...]]]:
    """About `rate` readings/s in all for `duration` seconds, round-robin over `devices`,
    from the simulator's profiles (cold chain, meter, machine)."""
    states = [
        DeviceState.create(DEVICE_TYPES[i % len(DEVICE_TYPES)], i) for i in range(len(devices))
    ]
    start = time.monotonic()
    n = 0
    while (elapsed := time.monotonic() - start) < duration:
        due = int(rate * elapsed) - n
        if due <= 0:
            time.sleep(min(0.05, 1 / rate))
            continue
        for _ in range(due):
            i = n % len(devices)
            yield devices[i], records_for(states[i], time.time())
            n += 1
