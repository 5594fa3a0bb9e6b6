"""The composition root: builds a veriot node's adapters and services from Settings.

Entry points (api, cli, dashboard) get everything from here and never build adapters
themselves.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from veriot.clock import SystemClock
from veriot.config import Settings
from veriot.core.errors import InputError, UnknownDeviceError
from veriot.core.types import ApiKey, Device, Segment
from veriot.identity.did import did_from_public_key, public_key_from_did
from veriot.identity.signatures import verify_signatures
from veriot.ingest.devices import DeviceCache
from veriot.ingest.event_budget import EventBudget
from veriot.ingest.metrics import IngestMetrics
from veriot.ingest.sequencer import Sequencer
from veriot.ingest.service import IngestService
from veriot.ingest.verify import Verifier
from veriot.ledger.checkpoint import log_public_key
from veriot.ports import ChainClient, Clock, Store

if TYPE_CHECKING:
    from veriot.chain.anchorer import Anchorer
    from veriot.chain.registry_sync import RegistrySync
    from veriot.ingest.alerts import AlertPipeline
    from veriot.ingest.check_pool import CheckPool
    from veriot.ingest.mqtt import MqttIngest
from veriot.storage import open_store

API_KEY_PREFIX = "vk_"


def load_or_create_log_seed(path: Path) -> bytes:
    """The log's Ed25519 seed, created (mode 0600) on first start."""
    if path.exists():
        raw = path.read_text().strip()
        try:
            seed = bytes.fromhex(raw)
        except ValueError as exc:
            raise InputError(f"log key file {path} is not hex") from exc
        if len(seed) != 32:
            raise InputError(f"log key file {path} holds {len(seed)} bytes; want 32")
        return seed
    path.parent.mkdir(parents=True, exist_ok=True)
    seed = secrets.token_bytes(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(seed.hex() + "\n")
    return seed


def hash_api_key(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


@dataclass
class Node:
    """Everything one veriot service runs on."""

    settings: Settings
    store: Store
    clock: Clock
    log_seed: bytes
    devices: DeviceCache
    metrics: IngestMetrics
    sequencer: Sequencer
    ingest: IngestService
    chain: ChainClient | None = None
    registry: RegistrySync | None = field(default=None)
    anchorer: Anchorer | None = field(default=None)
    alerts: AlertPipeline | None = field(default=None)
    mqtt: MqttIngest | None = field(default=None)
    check_pool: CheckPool | None = field(default=None)

    @cached_property
    def log_public_key(self) -> bytes:
        return log_public_key(self.log_seed)

    def helper_processes(self) -> list[tuple[str, int]]:
        """The helper processes running now, as (role, process id): "check" for each
        check process, "alerts" for the alert scoring process (see IngestMetrics)."""
        helpers = [("check", pid) for pid in self.check_pool.process_ids] if self.check_pool else []
        scorer = self.alerts.scorer_process if self.alerts is not None else None
        if scorer is not None:
            helpers.append(("alerts", scorer))
        return helpers

    def start(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Starts every component; when one cannot start (an unreachable MQTT broker, say),
        stops those already running and raises. `loop` is the event loop that serves the
        node's requests, if any: the check processes' answers are read on it."""
        try:
            if self.check_pool is None and self.settings.verify_processes:
                from veriot.ingest.check_pool import CheckPool

                settings = self.settings
                self.check_pool = CheckPool(
                    settings.verify_processes,
                    settings.db,
                    settings.data_dir,
                    settings.max_clock_skew_s,
                    loop,
                )
                self.devices.listeners.append(self.check_pool.put_device)
                self.ingest.verifier.verify_many = self.check_pool
                self.sequencer.coming = self.check_pool.in_flight
                if self.alerts is not None and self.alerts.engine is not None:
                    from veriot.ingest.alert_process import ProcessScorer

                    self.alerts.use_scorer(ProcessScorer())
            self.sequencer.start()
            if self.alerts is not None:
                self.alerts.start()
            if self.registry is not None:
                self.registry.start()
            if self.anchorer is not None:
                self.anchorer.start()
            if self.settings.mqtt and self.mqtt is None:
                from veriot.ingest.mqtt import start_mqtt

                self.mqtt = start_mqtt(self)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stops ingest (a final checkpoint is cut), anchors what is left when the chain
        answers, and closes the chain and the store."""
        if self.mqtt is not None:
            self.mqtt.stop()
            self.mqtt = None
        if self.alerts is not None:
            self.alerts.stop()  # its last alerts reach the log before the sequencer stops
        self.sequencer.stop()
        if self.check_pool is not None:
            self.devices.listeners.remove(self.check_pool.put_device)
            self.ingest.verifier.verify_many = verify_signatures
            self.sequencer.coming = None
            self.check_pool.close()
            self.check_pool = None
        if self.registry is not None:
            self.registry.stop()
        if self.anchorer is not None:
            self.anchorer.stop()
            self.anchorer.step()
        if self.chain is not None:
            self.chain.close()
        self.store.close()

    def register_device(
        self,
        public_key: bytes,
        name: str,
        type: str = "generic",
        metadata: dict[str, str] | None = None,
    ) -> Device:
        if self.registry is not None:
            did = did_from_public_key(public_key)
            return self.registry.register(did, public_key, type, name, metadata)
        device = Device(
            did=did_from_public_key(public_key),
            public_key=public_key,
            name=name,
            type=type,
            registered_at=self.clock.now(),
            metadata=metadata or {},
        )
        self.store.add_device(device)
        self.devices.put(device)
        return device

    def revoke_device(self, did: str) -> Device:
        public_key_from_did(did)  # a clear error for a malformed id
        if self.registry is not None:
            if self.store.get_device(did) is None:
                raise UnknownDeviceError(did)
            return self.registry.revoke(did)
        device = self.store.revoke_device(did, self.clock.now())
        self.devices.put(device)
        return device

    def create_api_key(self, name: str) -> str:
        key = API_KEY_PREFIX + secrets.token_urlsafe(32)
        self.store.add_api_key(
            ApiKey(name=name, key_hash=hash_api_key(key), created_at=self.clock.now())
        )
        return key

    def check_api_key(self, key: str) -> ApiKey | None:
        return self.store.find_api_key(hash_api_key(key))


def open_node(settings: Settings, clock: Clock | None = None) -> Node:
    """Opens the store and log key in settings.data_dir and builds the ingest services.
    Call `start()` before ingesting and `stop()` at the end."""
    clock = clock or SystemClock()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = open_store(settings.db, settings.data_dir)
    seed = load_or_create_log_seed(settings.log_key_path)
    devices = DeviceCache(store)
    metrics = IngestMetrics()
    budget = EventBudget(
        settings.security_event_limit,
        on_drop=lambda kind: metrics.events_dropped.labels(kind.value).inc(),
    )
    sequencer = Sequencer(store, seed, clock, settings.checkpoint_interval_s, event_budget=budget)
    verifier = Verifier(devices.get, settings.max_clock_skew_s)
    ingest = IngestService(verifier, sequencer, metrics, clock)
    metrics.log_size.set(sequencer.size)
    node = Node(settings, store, clock, seed, devices, metrics, sequencer, ingest)
    metrics.processes.helpers = node.helper_processes
    from veriot.ingest.alerts import AlertPipeline  # loads the AI layer (numpy, scipy)

    alerts = node.alerts = AlertPipeline(store, sequencer, devices.get, clock)

    def on_appended(segments: Sequence[Segment], alert_leaves: Sequence[tuple[int, bytes]]) -> None:
        metrics.commit_leaves.observe(sum(map(len, segments)) + len(alert_leaves))
        alerts.on_appended(segments, alert_leaves)

    sequencer.on_appended = on_appended
    if settings.use_chain:
        _attach_chain(node)
    return node


def _attach_chain(node: Node) -> None:
    """The chain as registry of record and witness of the log (see docs/chain.md)."""
    from veriot.chain.anchorer import Anchorer
    from veriot.chain.bootstrap import anchors_path, open_chain
    from veriot.chain.registry_sync import RegistrySync

    try:
        node.chain = open_chain(node.settings)
    except BaseException:
        node.store.close()
        raise
    node.registry = RegistrySync(node.chain, node.store, on_change=node.devices.put)
    node.anchorer = Anchorer(
        node.chain,
        node.store,
        interval_s=node.settings.anchor_interval_s,
        path=anchors_path(node.settings.data_dir),
    )
