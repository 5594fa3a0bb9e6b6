"""The edge agent through a broker that is killed and restarted mid-stream: every reading
it signed ends up in the log exactly once, in per-device order of sequence numbers."""

from __future__ import annotations

import secrets
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.integration.mqtt.brokers import PrivateBroker
from veriot.bootstrap import open_node
from veriot.config import Settings
from veriot.core.types import Record
from veriot.device import DeviceKey
from veriot.edge import EdgeAgent, EdgeBuffer
from veriot.ingest.mqtt import MqttIngest

pytestmark = pytest.mark.mqtt


def records(i: int) -> list[Record]:
    return [Record("temperature", 4.0 + i % 10 / 10, time.time(), "Cel")]


def test_broker_restart_mid_stream_loses_nothing_and_stores_nothing_twice(tmp_path: Path) -> None:
    broker = PrivateBroker(tmp_path / "broker")
    broker.start()
    node = open_node(Settings(data_dir=tmp_path / "data"))
    node.start()
    keys = [DeviceKey.generate(name=f"dev-{i}") for i in range(3)]
    for k in keys:
        node.register_device(k.public_key, k.name)
    ingest = MqttIngest(node.ingest, broker.url, client_id="veriot-test-serve")
    ingest.start(wait_s=10)
    agent = EdgeAgent(EdgeBuffer(tmp_path / "edge"), keys, broker.url, client_id="edge-test")
    agent.start()
    signed: list[tuple[str, int]] = []
    halfway = threading.Event()

    def produce() -> None:
        for i in range(900):
            entry = agent.submit(keys[i % 3].name, records(i))
            signed.append((entry.device, entry.seq))
            if i == 300:
                halfway.set()
            time.sleep(0.002)

    producer = threading.Thread(target=produce)
    producer.start()
    try:
        assert halfway.wait(30)
        broker.kill()  # whatever it held in memory is gone
        time.sleep(0.5)  # readings keep coming; the agent buffers them
        broker.start()
        producer.join()
        assert agent.wait_drained(60), f"{agent.buffer.count()} readings never answered"
    finally:
        agent.stop()
        ingest.stop()
        broker.stop()
    stored = Counter(
        (r.signed.reading.device, r.signed.reading.seq) for r in node.store.iter_readings()
    )
    node.stop()
    assert len(signed) == 900
    assert stored == Counter(signed)  # 0 lost, 0 stored twice
    assert agent.stats.rejected == 0


def test_a_restarted_agent_sends_what_it_buffered_while_the_broker_was_away(
    tmp_path: Path,
) -> None:
    broker = PrivateBroker(tmp_path / "broker")  # not started yet: the broker is down
    node = open_node(Settings(data_dir=tmp_path / "data"))
    node.start()
    key = DeviceKey.generate(name="pump")
    node.register_device(key.public_key, key.name)
    client_id = f"edge-{secrets.token_hex(3)}"
    first = EdgeAgent(EdgeBuffer(tmp_path / "edge"), [key], broker.url, client_id=client_id)
    first.start()
    seqs = [first.submit("pump", records(i)).seq for i in range(20)]
    first.stop()  # the agent restarts (or the box reboots) before the broker is back
    first.buffer.close()
    broker.start()
    ingest = MqttIngest(node.ingest, broker.url, client_id="veriot-test-serve")
    ingest.start(wait_s=10)
    again = EdgeAgent(EdgeBuffer(tmp_path / "edge"), [key], broker.url, client_id=client_id)
    again.start()
    try:
        more = [again.submit(key.did, records(i)).seq for i in range(5)]
        assert again.wait_drained(30)
    finally:
        again.stop()
        ingest.stop()
        broker.stop()
    logged = sorted(r.signed.reading.seq for r in node.store.iter_readings())
    node.stop()
    assert logged == seqs + more
    assert more[0] == seqs[-1] + 1  # the sequence survived the restart
