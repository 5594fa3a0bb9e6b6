"""Live alerts: every accepted reading is scored; a crossing of the threshold is an Alert.

An alert names the detector and its version hash and the log index range of the
readings that formed the sensor's state when it fired (the first and last log index the
sensor's detector has seen), so the decision can be re-run on proven data. Alerts are
log leaves:

    alert leaf = u8(EntryKind.ALERT) "veriot.alert.v1\\n" str16(device) str16(name)
                 f64(time) f64(score) f64(threshold) str16(detector) hash[32]
                 u64(first_index) u64(last_index)
"""

from __future__ import annotations

import json
import logging
import math
import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Final

from veriot.ai.base import DEFAULT_THRESHOLD, Detector
from veriot.ai.detectors import SeasonalEW
from veriot.ai.registry import make_detector
from veriot.ai.trust import is_plausible
from veriot.core.errors import DecodeError, InputError
from veriot.core.types import EntryKind, Reading, Record, SecurityEvent, SecurityEventKind

log = logging.getLogger(__name__)

ALERT_DOMAIN: Final = b"veriot.alert.v1\n"
_F64X3: Final = struct.Struct(">ddd")
_U64X2: Final = struct.Struct(">QQ")
_U16: Final = struct.Struct(">H")


@dataclass(frozen=True, slots=True)
class Alert:
    device: str
    name: str
    time: float
    score: float
    threshold: float
    detector: str
    detector_hash: str
    first_index: int
    last_index: int


@dataclass(frozen=True, slots=True)
class ScoredReading:
    """One record as the engine sees it."""

    device: str
    device_type: str
    name: str
    time: float
    value: float
    log_index: int


class _Sensor:
    __slots__ = ("above", "detector", "first_index")

    def __init__(self, detector: Detector, first_index: int) -> None:
        self.detector = detector
        self.first_index = first_index
        self.above = False


class AlertEngine:
    """Scores readings per (device, sensor) and returns an Alert on each upward crossing.

    `factory(device_type, name)` builds the detector for a new sensor (default: the
    frozen SeasonalEW). A sensor alerts once when its score rises to the threshold and
    again only after it has fallen below it. Preconditions: a sensor's readings arrive in
    time order; log indices increase.
    """

    def __init__(
        self,
        threshold: float = DEFAULT_THRESHOLD,
        factory: Callable[[str, str], Detector] | None = None,
    ) -> None:
        self.threshold = threshold
        self._factory = factory or (lambda _type, _name: SeasonalEW())
        self._sensors: dict[tuple[str, str], _Sensor] = {}
        self._by_device: dict[str, list[_Sensor]] = {}
        self._hashes: dict[type[Detector], str] = {}

    def __len__(self) -> int:
        return len(self._sensors)

    def feed(
        self, device: str, device_type: str, name: str, time: float, value: float, log_index: int
    ) -> Alert | None:
        alerts = self.feed_run(device, device_type, name, (time,), (value,), (log_index,))
        return alerts[0][1] if alerts else None

    def feed_run(
        self,
        device: str,
        device_type: str,
        name: str,
        times: Sequence[float],
        values: Sequence[float],
        log_indices: Sequence[int],
    ) -> list[tuple[int, Alert]]:
        """`feed` of each (time, value, log index) of one sensor, in order, in one call to
        its detector (Detector.step_many); returns (position in the run, alert) for each
        alert raised. Requires the three sequences to be of one length."""
        key = (device, name)
        sensor = self._sensors.get(key)
        if sensor is None:
            sensor = self._sensors[key] = _Sensor(self._factory(device_type, name), log_indices[0])
            self._by_device.setdefault(device, []).append(sensor)
        scores = sensor.detector.step_many(values, times)
        threshold, above = self.threshold, sensor.above
        out: list[tuple[int, Alert]] = []
        for position, score in enumerate(scores):
            if score < threshold:
                above = False
            elif not above:
                above = True
                index = log_indices[position]
                out.append(
                    (position, self._alert(sensor, device, name, times[position], score, index))
                )
        sensor.above = above
        return out

    def _alert(
        self, sensor: _Sensor, device: str, name: str, time: float, score: float, index: int
    ) -> Alert:
        """The alert of `sensor` whose score rose to `score` at `time`, log index `index`."""
        detector = sensor.detector
        digest = self._hashes.get(type(detector))
        if digest is None:
            digest = self._hashes[type(detector)] = detector.version_hash()
        return Alert(
            device,
            name,
            time,
            score,
            self.threshold,
            detector.name,
            digest,
            sensor.first_index,
            index,
        )

    def anomalous_share(self, device: str) -> float:
        """The share of `device`'s sensors whose last score is at or above the threshold
        (a lasting change, such as drift, keeps a sensor there); 0.0 for an unknown one.
        Safe to call from another thread than the one feeding."""
        sensors = list(self._by_device.get(device, ()))
        return sum(s.above for s in sensors) / len(sensors) if sensors else 0.0

    def feed_many(self, readings: Iterable[ScoredReading]) -> list[Alert]:
        out = []
        for r in readings:
            alert = self.feed(r.device, r.device_type, r.name, r.time, r.value, r.log_index)
            if alert is not None:
                out.append(alert)
        return out


Run = tuple[int, Sequence[Reading]]
"""Readings of one device at consecutive log indices: (the first one's log index, the
readings), as a Segment holds them."""


def score_runs(
    engine: AlertEngine,
    runs: Iterable[Run],
    types: Mapping[str, str],
    now: float,
    emit: bool,
) -> tuple[list[bytes], list[SecurityEvent], int]:
    """Feeds each plausible record of each reading of each run to `engine`, in order;
    `types[device]` is each device's type. A record whose value its unit rules out is
    not fed: it becomes an IMPOSSIBLE_VALUE event (time `now`). Returns the alert leaves
    (when `emit`; else detectors only learn, as in a warm start), those events and the
    number of records fed. (Compiled with the engine: this loop runs for every record
    the log stores.)"""
    leaves: list[bytes] = []
    events: list[SecurityEvent] = []
    scored = 0
    for first, readings in runs:
        if not readings:
            continue
        device = readings[0].device
        kind = types.get(device, "generic")
        # Each sensor's plausible records of the run, in log order, go to its detector in
        # one call; sensors are independent, so only the order of the alerts needs
        # restoring: by log index, then by the record's place in its reading.
        series: dict[str, tuple[list[float], list[float], list[int], list[int]]] = {}
        for index, reading in enumerate(readings, first):
            for place, record in enumerate(reading.records):
                if not is_plausible(record.unit, record.value):
                    events.append(
                        SecurityEvent(
                            device,
                            SecurityEventKind.IMPOSSIBLE_VALUE,
                            now,
                            reading.seq,
                            f"{record.name} = {record.value!r} {record.unit} is outside what "
                            f"the unit allows (log index {index})",
                        )
                    )
                else:
                    found = series.get(record.name)
                    if found is None:
                        found = series[record.name] = ([], [], [], [])
                    found[0].append(record.time)
                    found[1].append(record.value)
                    found[2].append(index)
                    found[3].append(place)
        raised: list[tuple[int, int, Alert]] = []
        for name, (times, values, indices, places) in series.items():
            scored += len(values)
            for k, alert in engine.feed_run(device, kind, name, times, values, indices):
                raised.append((indices[k], places[k], alert))
        if not emit:
            continue
        raised.sort(key=lambda found: (found[0], found[1]))
        for _, _, alert in raised:
            try:
                leaves.append(alert_leaf(alert))
            except InputError:
                log.exception("alert of %s/%s cannot be a leaf", device, alert.name)
    return leaves, events, scored


def rescore(alert: Alert, records: Iterable[Record]) -> float:
    """Re-runs the alert's decision: the score its detector gives the last of `records`.

    `records` are the records named `alert.name` of `alert.device`'s readings with log
    index first_index..last_index, in log order; those whose value is not plausible for
    their unit are skipped, as the live pipeline skips them. Raises InputError when the
    detector is unknown or its version hash is not the alert's (the code changed), or
    when no record is left.
    """
    detector = make_detector(alert.detector)
    if not isinstance(detector, Detector):
        raise InputError(f"detector {alert.detector!r} is not a per-sensor detector")
    if detector.version_hash() != alert.detector_hash:
        raise InputError(
            f"detector {alert.detector!r} is at version {detector.version_hash()}; "
            f"the alert was raised by {alert.detector_hash}"
        )
    score: float | None = None
    for record in records:
        if is_plausible(record.unit, record.value):
            score = detector.step(record.value, record.time)
    if score is None:
        raise InputError(f"no plausible record named {alert.name!r} to re-score")
    return score


def _str16(value: str) -> bytes:
    raw = value.encode()
    if len(raw) > 0xFFFF:
        raise InputError(f"string of {len(raw)} bytes does not fit a 2-byte length")
    return _U16.pack(len(raw)) + raw


def alert_leaf(alert: Alert) -> bytes:
    """The canonical log leaf data of an alert (see the module docstring)."""
    digest = bytes.fromhex(alert.detector_hash)
    if len(digest) != 32:
        raise InputError(f"detector hash is {len(digest)} bytes; want 32")
    if not 0 <= alert.first_index <= alert.last_index < 1 << 64:
        raise InputError(
            f"alert index range [{alert.first_index}, {alert.last_index}] is not "
            "an ordered pair of log indices"
        )
    for what, v in (("time", alert.time), ("score", alert.score), ("threshold", alert.threshold)):
        if not math.isfinite(v):
            raise InputError(f"alert {what} is {v!r}; want a finite number")
    return b"".join(
        (
            bytes((EntryKind.ALERT,)),
            ALERT_DOMAIN,
            _str16(alert.device),
            _str16(alert.name),
            _F64X3.pack(alert.time, alert.score, alert.threshold),
            _str16(alert.detector),
            digest,
            _U64X2.pack(alert.first_index, alert.last_index),
        )
    )


def parse_alert_leaf(data: bytes) -> Alert:
    """Inverse of alert_leaf. Raises DecodeError."""
    if data[:1] != bytes((EntryKind.ALERT,)) or data[1 : 1 + len(ALERT_DOMAIN)] != ALERT_DOMAIN:
        raise DecodeError("not an alert leaf: wrong kind byte or domain")
    pos = 1 + len(ALERT_DOMAIN)

    def take(n: int) -> bytes:
        nonlocal pos
        if pos + n > len(data):
            raise DecodeError(f"truncated alert leaf: need {n} bytes at offset {pos}")
        chunk = data[pos : pos + n]
        pos += n
        return chunk

    def text() -> str:
        (n,) = _U16.unpack(take(2))
        try:
            return take(n).decode()
        except UnicodeDecodeError as exc:
            raise DecodeError(f"invalid UTF-8 in alert leaf at offset {pos - n}") from exc

    device, name = text(), text()
    time, score, threshold = _F64X3.unpack(take(24))
    detector = text()
    digest = take(32).hex()
    first, last = _U64X2.unpack(take(16))
    if pos != len(data):
        raise DecodeError(f"alert leaf has {len(data) - pos} trailing bytes")
    return Alert(device, name, time, score, threshold, detector, digest, first, last)


def alert_to_json(alert: Alert) -> dict[str, object]:
    return asdict(alert)


def alert_from_json(obj: dict[str, object]) -> Alert:
    """Raises InputError when a field is missing or of the wrong type."""
    try:
        return Alert(
            device=str(obj["device"]),
            name=str(obj["name"]),
            time=float(obj["time"]),  # type: ignore[arg-type]
            score=float(obj["score"]),  # type: ignore[arg-type]
            threshold=float(obj["threshold"]),  # type: ignore[arg-type]
            detector=str(obj["detector"]),
            detector_hash=str(obj["detector_hash"]),
            first_index=int(obj["first_index"]),  # type: ignore[call-overload]
            last_index=int(obj["last_index"]),  # type: ignore[call-overload]
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"not an alert object: {exc}") from exc


def alert_json_bytes(alert: Alert) -> bytes:
    return json.dumps(alert_to_json(alert), sort_keys=True, separators=(",", ":")).encode()
