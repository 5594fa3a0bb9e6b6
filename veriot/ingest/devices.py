"""The ingest path's view of the device registry: an in-memory cache, never a store or
chain call per reading. Misses fall back to the store (a device registered by another
process), and a periodic refresh picks up revocations made elsewhere."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from veriot.core.types import Device
from veriot.ports import DeviceStore

MISS_RECHECK_S = 1.0
"""A did that missed is looked up in the store again at most this often."""


class DeviceCache:
    def __init__(self, store: DeviceStore) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._devices: dict[str, Device] = {}
        self._missed: dict[str, float] = {}
        self.listeners: list[Callable[[Device], None]] = []
        """Called with each device put into the cache (check processes keep theirs in step)."""
        self.refresh()

    def refresh(self) -> None:
        """Reloads every device from the store (picks up changes made by other processes)."""
        devices = {d.did: d for d in self._store.list_devices()}
        with self._lock:
            self._devices = devices
            self._missed.clear()

    def put(self, device: Device) -> None:
        with self._lock:
            self._devices[device.did] = device
            self._missed.pop(device.did, None)
        for listener in self.listeners:
            listener(device)

    def get(self, did: str) -> Device | None:
        device = self._devices.get(did)
        if device is not None:
            return device
        now = time.monotonic()
        with self._lock:
            last = self._missed.get(did)
            if last is not None and now - last < MISS_RECHECK_S:
                return None
            self._missed[did] = now
            if len(self._missed) > 100_000:  # bound memory under a flood of unknown ids
                self._missed.clear()
        device = self._store.get_device(did)
        if device is not None:
            self.put(device)
        return device

    def all(self) -> list[Device]:
        with self._lock:
            return list(self._devices.values())
