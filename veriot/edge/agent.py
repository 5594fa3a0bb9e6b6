"""The edge agent: signs readings for the devices whose keys it holds, buffers them
durably, sends them over MQTT, and forgets each only when veriot's ack says it is stored.

    submit(device, records) --sign, buffer--> sender thread --QoS 1--> veriot/v1/{did}/readings
    veriot/v1/{did}/acks --> settle: accepted / replay -> done; refused -> kept aside;
                                     unavailable -> resent later

While the broker or network is down readings pile up in the buffer; after reconnecting,
or when an ack is overdue, everything still buffered is sent again from the oldest, in
order. A reading veriot already has comes back as a replay, so resending is safe.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import msgspec

from veriot.core.errors import InputError
from veriot.core.types import Record
from veriot.core.wire import encode_reading
from veriot.device import DeviceKey, sign_reading
from veriot.edge.buffer import EdgeBuffer, Entry
from veriot.ingest.mqtt_link import MqttLink
from veriot.ingest.mqtt_messages import acks_topic, readings_topic

log = logging.getLogger(__name__)

DEFAULT_PER_MESSAGE = 100
DEFAULT_WINDOW = 2000
"""Readings sent and not yet answered, at most."""
DEFAULT_RESEND_AFTER_S = 10.0

_encoder = msgspec.json.Encoder()


@dataclass
class EdgeStats:
    sent: int = 0
    stored: int = 0
    rejected: int = 0
    resends: int = 0


class EdgeAgent:
    """Sends for `keys` (looked up by did or by name) through the broker at `url`.

    `client_id` names the agent's persistent session (acks that arrive while it is offline
    wait there); keep it stable. Call `start()`, then `submit(...)`, and `stop()`.
    """

    def __init__(
        self,
        buffer: EdgeBuffer,
        keys: Sequence[DeviceKey],
        url: str,
        *,
        client_id: str,
        per_message: int = DEFAULT_PER_MESSAGE,
        window: int = DEFAULT_WINDOW,
        resend_after_s: float = DEFAULT_RESEND_AFTER_S,
    ) -> None:
        if not keys:
            raise InputError("the edge agent needs at least one device key")
        self.buffer = buffer
        self._keys: dict[str, DeviceKey] = {}
        for key in keys:
            self._keys[key.did] = key
            if key.name:
                self._keys.setdefault(key.name, key)
        self._per_message = per_message
        self._window = window
        self._resend_after_s = resend_after_s
        self.stats = EdgeStats()
        self._cond = threading.Condition()
        self._inflight: dict[int, float] = {}  # entry id -> when sent
        self._cursor = 0
        self._generation = 0
        self._stopping = False
        self._thread: threading.Thread | None = None
        dids = sorted({k.did for k in keys})
        self.link = MqttLink(
            url,
            client_id,
            subscriptions=[(acks_topic(did), 1) for did in dids],
            on_message=self._on_ack,
            on_connect=self._on_connect,
        )

    # -- public ----------------------------------------------------------------------------

    def start(self) -> None:
        self.link.start()
        self._thread = threading.Thread(target=self._send_loop, name="veriot-edge", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stops sending; what is buffered stays for the next start."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join()
        self.link.stop()

    def submit(self, device: str, records: Iterable[Record]) -> Entry:
        """Signs the next reading of `device` (did or key name) and buffers it durably.
        Raises InputError for an unknown device or invalid records."""
        key = self._keys.get(device)
        if key is None:
            raise InputError(f"no key for device {device!r}; the agent holds {self.devices()}")
        records = tuple(records)
        entry = self.buffer.add(
            key.did, lambda seq: _encoder.encode(encode_reading(sign_reading(key, seq, records)))
        )
        with self._cond:
            self._cond.notify_all()
        return entry

    def devices(self) -> list[str]:
        return sorted({k.did for k in self._keys.values()})

    def wait_drained(self, timeout: float) -> bool:
        """True once veriot has answered every buffered reading; False after `timeout`."""
        deadline = time.monotonic() + timeout
        while self.buffer.count():
            if time.monotonic() >= deadline:
                return False
            with self._cond:
                self._cond.wait(0.1)
        return True

    # -- sending ---------------------------------------------------------------------------

    def _on_connect(self, generation: int) -> None:
        with self._cond:  # resend everything still buffered, from the oldest
            self._generation = generation
            self._cursor = 0
            self._inflight.clear()
            self._cond.notify_all()

    def _send_loop(self) -> None:
        while True:
            with self._cond:
                while not self._stopping and not self._ready():
                    self._cond.wait(0.5)
                    self._check_overdue()
                if self._stopping:
                    return
                cursor, room = self._cursor, self._window - len(self._inflight)
            entries = self.buffer.pending(after=cursor, limit=room)
            if not entries:
                with self._cond:
                    self._cond.wait(0.2)
                    self._check_overdue()
                continue
            self._send(entries)

    def _ready(self) -> bool:
        return self.link.connected.is_set() and len(self._inflight) < self._window

    def _check_overdue(self) -> None:
        """Called with the condition held: restarts from the oldest when an ack is late."""
        if not self._inflight:
            return
        if time.monotonic() - min(self._inflight.values()) > self._resend_after_s:
            log.warning("no ack for %d readings; sending the buffer again", len(self._inflight))
            self.stats.resends += 1
            self._cursor = 0
            self._inflight.clear()

    def _send(self, entries: list[Entry]) -> None:
        # Consecutive readings of one device travel together, in order.
        groups: list[list[Entry]] = []
        for entry in entries:
            last = groups[-1] if groups else None
            if last and last[0].device == entry.device and len(last) < self._per_message:
                last.append(entry)
            else:
                groups.append([entry])
        for group in groups:
            body = b'{"readings":[' + b",".join(e.payload for e in group) + b"]}"
            correlation = ",".join(str(e.id) for e in group).encode()
            with self._cond:
                if self._stopping:
                    return
                now = time.monotonic()
                for e in group:
                    self._inflight[e.id] = now
                self._cursor = max(self._cursor, group[-1].id)
            self.link.publish(readings_topic(group[0].device), body, correlation=correlation)
            self.stats.sent += len(group)

    # -- acks (network thread) -------------------------------------------------------------

    def _on_ack(self, message: object, generation: int) -> None:
        props = getattr(message, "properties", None)
        corr = getattr(props, "CorrelationData", None)
        try:
            ids = [int(x) for x in bytes(corr or b"").decode().split(",") if x]
            results = json.loads(bytes(getattr(message, "payload", b"")))["results"]
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring an ack this agent cannot match to what it sent")
            return
        if len(ids) != len(results):
            log.warning("ack with %d results for %d readings; ignored", len(results), len(ids))
            return
        stored: list[int] = []
        refused: list[tuple[int, str, str]] = []
        retry: list[int] = []
        for entry_id, result in zip(ids, results, strict=True):
            reason = result.get("reason")
            if result.get("status") == "accepted" or reason == "replay":
                stored.append(entry_id)
            elif reason == "unavailable":
                retry.append(entry_id)
            else:
                refused.append((entry_id, str(reason), str(result.get("detail", ""))))
                log.error("veriot refused buffered reading %d: %s", entry_id, refused[-1][2])
        newly_stored = self.buffer.settle(stored)
        newly_refused = self.buffer.settle((), refused) if refused else 0
        with self._cond:
            for entry_id in [*stored, *retry, *(r[0] for r in refused)]:
                self._inflight.pop(entry_id, None)
            if retry:  # veriot's store was down: send them again from the oldest
                self._cursor = min(self._cursor, min(retry) - 1)
            self.stats.stored += newly_stored
            self.stats.rejected += newly_refused
            self._cond.notify_all()
