"""The device registry on chain, mirrored into the local device store.

Registration, key rotation and revocation are chain transactions; the ingest path reads
the store (through its in-memory cache) and never calls the chain per reading. A poller
follows the registry's events block by block and applies them to the store, so a
revocation made on chain by anyone reaches veriot within one polling interval (set it at
or below the block time for "within one block"). Changes made through this class are
applied at once, without waiting for the poller.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping

from veriot.chain.periodic import Periodic
from veriot.core.errors import ChainError, DeviceExistsError, UnknownDeviceError
from veriot.core.types import Device
from veriot.ports import (
    DEVICE_REGISTERED,
    DEVICE_REVOKED,
    KEY_ROTATED,
    ChainClient,
    DeviceEvent,
    DeviceStore,
    TxReceipt,
)

log = logging.getLogger(__name__)

DEFAULT_POLL_INTERVAL_S = 1.0


def metadata_hash(metadata: Mapping[str, str]) -> bytes:
    """SHA-256 of the metadata as canonical JSON (sorted keys, no spaces, UTF-8): what the
    registry records, so the metadata itself can stay off chain."""
    text = json.dumps(dict(metadata), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).digest()


def _in_force_since(block_time: float) -> float:
    """When a registration was in force, for the local cache: its block's timestamp, or now
    if earlier. Block timestamps are whole seconds and run ahead of the wall clock when
    blocks come faster than one a second; readings signed just after a registration was
    mined must not be refused for that."""
    return min(float(block_time), time.time())


class RegistrySync:
    """Keeps `devices` in step with the chain's registry.

    `on_change` is called with each device the sync adds or changes (the ingest cache's
    `put`). Polling starts at the chain's deployment block (events are applied
    idempotently, so a restart rescans safely).
    """

    def __init__(
        self,
        chain: ChainClient,
        devices: DeviceStore,
        *,
        on_change: Callable[[Device], None] | None = None,
        interval_s: float = DEFAULT_POLL_INTERVAL_S,
        from_block: int = 0,
    ) -> None:
        self._chain = chain
        self._devices = devices
        self._on_change = on_change
        self._interval_s = interval_s
        self._next_block = from_block
        self._lock = threading.Lock()
        self._loop = Periodic("registry-sync", self._tick, interval_s)
        self.last_error: str | None = None

    # --- writes: a chain transaction, then the store ----------------------------------

    def register(
        self,
        did: str,
        public_key: bytes,
        device_type: str,
        name: str = "",
        metadata: Mapping[str, str] | None = None,
    ) -> Device:
        """Registers the device on chain and in the store. Raises DeviceExistsError when
        the chain already has it, ChainError when the chain refuses or fails."""
        meta = dict(metadata or {})
        if self._chain.get_device(did) is not None:
            raise DeviceExistsError(did)
        receipt = self._chain.register_device(did, public_key, device_type, metadata_hash(meta))
        device = Device(
            did,
            public_key,
            name or did,
            device_type,
            _in_force_since(receipt.timestamp),
            metadata=meta,
        )
        with self._lock:
            try:
                self._devices.add_device(device)
            except DeviceExistsError:
                device = self._devices.get_device(did) or device
        self._changed(device)
        return device

    def revoke(self, did: str) -> Device:
        """Revokes the device on chain and in the store; revoked_at is the block time."""
        receipt = self._chain.revoke_device(did)
        return self._apply_revoke(did, float(receipt.timestamp))

    def rotate_key(self, did: str, public_key: bytes) -> TxReceipt:
        receipt = self._chain.rotate_key(did, public_key)
        with self._lock:
            self._changed(self._devices.rotate_key(did, public_key))
        return receipt

    # --- following the chain ----------------------------------------------------------

    def poll(self) -> int:
        """Applies registry events from the blocks not seen yet; returns how many.
        Raises ChainError when the chain cannot be read (nothing is skipped: the same
        blocks are read again next time)."""
        head = self._chain.block_number()
        if head < self._next_block:
            return 0
        events = self._chain.device_events(self._next_block, head)
        for event in events:
            self.apply(event)
        self._next_block = head + 1
        return len(events)

    def apply(self, event: DeviceEvent) -> None:
        """Applies one registry event to the store (idempotent)."""
        if event.kind == DEVICE_REGISTERED:
            device = Device(
                event.did,
                event.public_key,
                event.did,
                event.device_type,
                _in_force_since(event.time),
                metadata={"metadata_hash": event.metadata_hash.hex()},
            )
            with self._lock:
                if self._devices.get_device(event.did) is not None:
                    return
                try:
                    self._devices.add_device(device)
                except DeviceExistsError:
                    return
            log.info("registry: device %s registered on chain (block %d)", event.did, event.block)
            self._changed(device)
        elif event.kind == KEY_ROTATED:
            with self._lock:
                current = self._devices.get_device(event.did)
                if current is None or current.public_key == event.public_key:
                    return
                device = self._devices.rotate_key(event.did, event.public_key)
            log.info("registry: key of %s rotated on chain (block %d)", event.did, event.block)
            self._changed(device)
        elif event.kind == DEVICE_REVOKED:
            # a device registered elsewhere before this store existed: nothing to revoke
            with contextlib.suppress(UnknownDeviceError):
                self._apply_revoke(event.did, event.time)

    def _apply_revoke(self, did: str, at: float) -> Device:
        # In force from the block time, or from now if the block's whole-second timestamp
        # runs ahead of the clock: readings must be refused as soon as veriot learns of it.
        at = _in_force_since(at)
        with self._lock:
            try:
                device = self._devices.revoke_device(did, at)
            except UnknownDeviceError:
                log.warning("registry: %s revoked on chain but unknown here", did)
                raise
        log.info("registry: device %s revoked at %.0f", did, at)
        self._changed(device)
        return device

    def _changed(self, device: Device) -> None:
        if self._on_change is not None:
            self._on_change(device)

    # --- the background poller --------------------------------------------------------

    def _tick(self) -> None:
        """One poll; chain failures are logged and retried next interval."""
        try:
            self.poll()
            if self.last_error is not None:
                log.info("registry sync: chain reachable again")
            self.last_error = None
        except ChainError as exc:
            if str(exc) != self.last_error:
                log.warning("registry sync: %s (retrying every %.1fs)", exc, self._interval_s)
            self.last_error = str(exc)
        except Exception as exc:  # a store fault must not end the sync for good
            log.exception("registry sync failed; trying again next interval")
            self.last_error = str(exc)

    def start(self) -> None:
        """Polls every interval on a background thread until `stop()`."""
        self._loop.start()

    def stop(self) -> None:
        self._loop.stop()
