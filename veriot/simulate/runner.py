"""Drives a simulated fleet against a veriot service over HTTP."""

from __future__ import annotations

import concurrent.futures
import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from veriot.core.wire import encode_reading
from veriot.device import DeviceKey, sign_reading
from veriot.simulate.profiles import DEVICE_TYPES, DeviceState, records_for

READINGS_PER_REQUEST = 100


@dataclass
class SimDevice:
    key: DeviceKey
    state: DeviceState
    seq: int = 0


@dataclass
class SimStats:
    sent: int = 0
    accepted: int = 0
    rejected: int = 0
    errors: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    accepted_ids: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, results: list[dict[str, object]]) -> None:
        with self.lock:
            for r in results:
                if r.get("status") == "accepted":
                    self.accepted += 1
                    if len(self.accepted_ids) < 1000:
                        self.accepted_ids.append(str(r["id"]))
                else:
                    self.rejected += 1
                    reason = str(r.get("reason"))
                    self.reasons[reason] = self.reasons.get(reason, 0) + 1


def register_fleet(client: httpx.Client, count: int, prefix: str = "sim") -> list[SimDevice]:
    """Registers `count` devices (types in turn) through the operator API."""
    fleet = []
    for i in range(count):
        kind = DEVICE_TYPES[i % len(DEVICE_TYPES)]
        key = DeviceKey.generate()
        body = {"name": f"{prefix}-{kind}-{i}", "type": kind, "public_key": key.public_key.hex()}
        response = client.post("/v1/devices", json=body)
        if response.status_code != 201:
            raise RuntimeError(
                f"registering a device failed: {response.status_code} {response.text}"
            )
        fleet.append(SimDevice(key=key, state=DeviceState.create(kind, seed=i)))
    return fleet


def run_fleet(
    client: httpx.Client,
    fleet: list[SimDevice],
    rate: float,
    duration: float,
    progress: Callable[[int], object] | None = None,
    workers: int = 4,
) -> SimStats:
    """Streams about `rate` readings/s in total for `duration` seconds, round-robin over the
    fleet, in requests of up to 100 readings sent by `workers` threads."""
    stats = SimStats()
    start = time.monotonic()
    devices = itertools.cycle(fleet)
    sent_total = 0

    def send(batch: list[dict[str, object]]) -> None:
        try:
            response = client.post("/v1/readings", json={"readings": batch})
            body = response.json()
            stats.add(list(body.get("results", [])))
        except (httpx.HTTPError, ValueError):
            with stats.lock:
                stats.errors += len(batch)
        if progress is not None:
            progress(len(batch))

    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        pending: set[concurrent.futures.Future[None]] = set()
        while (elapsed := time.monotonic() - start) < duration:
            due = int(rate * elapsed) - sent_total
            if due <= 0:
                time.sleep(min(0.05, 1 / max(rate, 1)))
                continue
            due = min(due, READINGS_PER_REQUEST)
            now = time.time()
            batch = []
            for _ in range(due):
                device = next(devices)
                device.seq += 1
                signed = sign_reading(device.key, device.seq, records_for(device.state, now))
                batch.append(encode_reading(signed))
            sent_total += due
            stats.sent += due
            pending.add(pool.submit(send, batch))
            if len(pending) > workers * 4:
                _done, pending = concurrent.futures.wait(pending, return_when="FIRST_COMPLETED")
        concurrent.futures.wait(pending)
    return stats
