"""Drives a simulated fleet through an MQTT broker: each device publishes its signed
readings to its own topic at QoS 1, and the acks veriot publishes are tallied."""

from __future__ import annotations

import itertools
import json
import secrets
import threading
import time
from collections.abc import Callable
from typing import Any

import msgspec

from veriot.core.wire import encode_reading
from veriot.device import sign_reading
from veriot.ingest.mqtt_link import MqttLink
from veriot.ingest.mqtt_messages import acks_topic, readings_topic
from veriot.simulate.profiles import records_for
from veriot.simulate.runner import SimDevice, SimStats

READINGS_PER_MESSAGE = 20
ACK_WAIT_S = 30.0

_encoder = msgspec.json.Encoder()


def run_fleet_mqtt(
    url: str,
    fleet: list[SimDevice],
    rate: float,
    duration: float,
    progress: Callable[[int], Any] | None = None,
) -> SimStats:
    """Publishes about `rate` readings/s in all for `duration` seconds, round-robin over
    the fleet, up to 20 readings of one device per message; then waits (up to 30 s) for
    veriot's acks. Readings never answered count as errors."""
    stats = SimStats()
    answered = threading.Semaphore(0)

    def on_ack(message: object, generation: int) -> None:
        try:
            results = json.loads(bytes(getattr(message, "payload", b"")))["results"]
        except (ValueError, KeyError, TypeError):
            return
        stats.add(list(results))
        answered.release()

    link = MqttLink(
        url,
        f"veriot-simulate-{secrets.token_hex(4)}",
        subscriptions=[(acks_topic(d.key.did), 1) for d in fleet],
        on_message=on_ack,
        session_expiry_s=0,
    )
    link.start()
    try:
        link.wait_connected(10)
        devices = itertools.cycle(fleet)
        messages = 0
        start = time.monotonic()
        while (elapsed := time.monotonic() - start) < duration:
            due = min(int(rate * elapsed) - stats.sent, READINGS_PER_MESSAGE)
            if due <= 0:
                time.sleep(min(0.05, 1 / max(rate, 1)))
                continue
            device = next(devices)
            now = time.time()
            readings = []
            for _ in range(due):
                device.seq += 1
                signed = sign_reading(device.key, device.seq, records_for(device.state, now))
                readings.append(encode_reading(signed))
            link.publish(readings_topic(device.key.did), _encoder.encode({"readings": readings}))
            messages += 1
            stats.sent += due
            if progress is not None:
                progress(due)
        deadline = time.monotonic() + ACK_WAIT_S
        for _ in range(messages):
            if not answered.acquire(timeout=max(0.0, deadline - time.monotonic())):
                break
    finally:
        link.stop()
    with stats.lock:
        stats.errors = stats.sent - stats.accepted - stats.rejected
    return stats
