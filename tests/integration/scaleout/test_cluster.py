"""Two workers and the sequencer against PostgreSQL and Mosquitto: every reading sent is
stored exactly once, through a killed worker and a PostgreSQL connection cut mid-batch."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest

from tests.conftest import service_missing
from tests.integration.mqtt.brokers import shared_broker
from tests.integration.mqtt.devices import DeviceSide, reading
from veriot.bootstrap import open_node
from veriot.config import Settings
from veriot.core.types import Device
from veriot.core.wire import encode_request
from veriot.device import DeviceKey
from veriot.ingest.mqtt_cluster import MqttSequencer
from veriot.storage.postgres import PostgresStore
from veriot.storage.testing import drop_schema, find_test_postgres, fresh_schema_name

pytestmark = [pytest.mark.mqtt, pytest.mark.postgres]

PER_MESSAGE = 5


@dataclass
class Cluster:
    mqtt: str
    db: str  # a URL whose search_path is the test's own schema
    group: str
    topic: str
    tmp: Path

    def worker(self, name: str) -> subprocess.Popen[str]:
        return _launch(
            "worker", "--mqtt", self.mqtt, "--db", self.db, "--group", self.group,
            "--internal-topic", self.topic, "--client-id", f"{self.group}-{name}",
            "--session-expiry", "120", "--threads", "2",
        )  # fmt: skip

    def sequencer(self) -> subprocess.Popen[str]:
        return _launch(
            "sequencer", "--mqtt", self.mqtt, "--db", self.db, "--data", str(self.tmp / "seq"),
            "--internal-topic", self.topic, "--client-id", f"{self.group}-sequencer",
            "--session-expiry", "120",
        )  # fmt: skip

    def store(self) -> PostgresStore:
        return PostgresStore(self.db)


def _launch(*args: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "veriot.cli.main", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()  # printed once connected and subscribed
    assert line.startswith("veriot "), f"{args[0]} did not start: {line}{proc.stdout.read()}"
    return proc


def _stop(*procs: subprocess.Popen[str]) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        if p.stdout is not None and not p.stdout.closed:
            print(list(p.args)[3], p.stdout.read())  # type: ignore[arg-type]  # shown on failure
            p.stdout.close()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    mqtt = shared_broker()
    dsn, why = find_test_postgres()
    if dsn is None:
        service_missing(f"PostgreSQL ({why})")
        raise AssertionError("unreachable")
    schema = fresh_schema_name()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in dsn else "?"
    db = f"{dsn}{sep}options={quote(f'-csearch_path={schema}')}"
    tag = f"t{secrets.token_hex(4)}"
    yield Cluster(mqtt, db, tag, f"veriot-test/{tag}/checked", tmp_path)
    drop_schema(dsn, schema)


def register(cluster: Cluster, count: int) -> list[DeviceKey]:
    keys = [DeviceKey.generate() for _ in range(count)]
    store = cluster.store()
    for k in keys:
        store.add_device(Device(k.did, k.public_key, k.did[-8:], "sensor", time.time() - 60))
    store.close()
    return keys


class Stream:
    """Sends numbered messages of PER_MESSAGE readings, round-robin over the devices."""

    def __init__(self, cluster: Cluster, keys: list[DeviceKey]) -> None:
        self.keys = keys
        self.device = DeviceSide(cluster.mqtt, [k.did for k in keys])
        self.sent: list[tuple[str, int]] = []
        self.seqs = dict.fromkeys((k.did for k in keys), 0)
        self.messages = 0

    def send(self, messages: int) -> None:
        for _ in range(messages):
            key = self.keys[self.messages % len(self.keys)]
            first = self.seqs[key.did] + 1
            batch = [reading(key, s) for s in range(first, first + PER_MESSAGE)]
            self.seqs[key.did] += PER_MESSAGE
            self.device.publish(key.did, encode_request(batch), str(self.messages).encode())
            self.sent += [(key.did, s) for s in range(first, first + PER_MESSAGE)]
            self.messages += 1

    def await_acks(self, timeout: float = 20) -> Counter[str]:
        """Waits for an ack of every message; returns the count of each reading status."""
        answered: dict[bytes, list[dict[str, object]]] = {}
        deadline = time.monotonic() + timeout
        while len(answered) < self.messages:
            _topic, corr, body = self.device.next_ack(max(0.1, deadline - time.monotonic()))
            assert corr is not None
            # A message redelivered after a kill is answered again (replay); its first
            # answer is the one that says how it was stored.
            answered.setdefault(corr, body["results"])
        return Counter(
            str(r["status"]) if r["status"] == "accepted" else str(r["reason"])
            for results in answered.values()
            for r in results
        )


def stored(cluster: Cluster) -> Counter[tuple[str, int]]:
    store = cluster.store()
    try:
        return Counter(
            (r.signed.reading.device, r.signed.reading.seq) for r in store.iter_readings()
        )
    finally:
        store.close()


def test_two_workers_and_a_sequencer_store_each_reading_once(cluster: Cluster) -> None:
    keys = register(cluster, 4)
    sequencer = cluster.sequencer()
    workers = [cluster.worker("w1"), cluster.worker("w2")]
    stream = Stream(cluster, keys)
    try:
        stream.send(120)
        statuses = stream.await_acks()
    finally:
        stream.device.close()
        _stop(*workers, sequencer)
    assert statuses == Counter({"accepted": 120 * PER_MESSAGE})
    assert stored(cluster) == Counter(stream.sent)


def test_a_killed_worker_and_a_cut_database_connection_lose_nothing(
    cluster: Cluster, caplog: pytest.LogCaptureFixture
) -> None:
    keys = register(cluster, 4)
    # The sequencer in this process, so the test can cut its own PostgreSQL connections.
    # Without a chain and with checkpoints an hour apart, the sequencer's own commits and
    # lookups are the only users of the store: the next one after the cut meets it (an
    # anchorer or a checkpoint taking a cut connection first would absorb it unseen).
    settings = Settings(
        data_dir=cluster.tmp / "seq", db=cluster.db, use_chain=False, checkpoint_interval_s=3600
    )
    node = open_node(settings)
    node.start()
    sequencer = MqttSequencer(
        node.ingest, cluster.mqtt, client_id=f"{cluster.group}-seq", internal_topic=cluster.topic
    )
    sequencer.start(wait_s=10)
    w1, w2 = cluster.worker("w1"), cluster.worker("w2")
    stream = Stream(cluster, keys)
    try:
        stream.send(60)
        os.kill(w1.pid, signal.SIGKILL)  # its unacknowledged share waits in its session
        _stop(w1)
        stream.send(30)
        _cut_connections(node.store)
        stream.send(30)
        w1 = cluster.worker("w1")  # back with the same client id: the session is resumed
        statuses = stream.await_acks()
    finally:
        stream.device.close()
        _stop(w1, w2)
        sequencer.stop()
        node.stop()
    # The cut was felt: an append failed, and its messages were retried, not answered.
    assert any("store is unavailable; retrying" in r.getMessage() for r in caplog.records)
    # A reading may come twice (redelivered after the kill); the second copy is a replay.
    assert statuses["accepted"] == 120 * PER_MESSAGE
    assert set(statuses) <= {"accepted", "replay"}
    assert stored(cluster) == Counter(stream.sent)


def _cut_connections(store: object) -> None:
    """Terminates the PostgreSQL backends of `store`'s pooled connections, as a server
    restart would."""
    pool = store._pool  # type: ignore[attr-defined]
    deadline = time.monotonic() + 10
    while not (pids := [c.info.backend_pid for c in list(pool._idle)]):
        assert time.monotonic() < deadline, "the store holds no pooled connection to cut"
        time.sleep(0.001)  # a connection is back in the pool between two commits
    dsn, _ = find_test_postgres()
    assert dsn is not None
    with psycopg.connect(dsn, autocommit=True) as conn:
        for pid in pids:
            conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
