"""MQTT ingest against a real Mosquitto and a real node: what a device sees on its acks
topic and what the log ends up holding."""

from __future__ import annotations

import json
import secrets
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.mqtt.brokers import PrivateBroker, shared_broker
from tests.integration.mqtt.devices import DeviceSide, reading
from veriot.bootstrap import Node, open_node
from veriot.config import Settings
from veriot.core.wire import encode_reading, encode_request
from veriot.device import DeviceKey
from veriot.ingest.mqtt import MqttIngest, start_mqtt
from veriot.ingest.mqtt_link import MqttError

pytestmark = pytest.mark.mqtt


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    node = open_node(Settings(data_dir=tmp_path / "data", checkpoint_interval_s=0.2))
    node.start()
    yield node
    node.stop()


def consume(node: Node, url: str, group: str | None = None) -> MqttIngest:
    ingest = MqttIngest(
        node.ingest,
        url,
        client_id=f"test-ingest-{secrets.token_hex(4)}",
        # A group of the test's own, so no other consumer of the shared broker takes a share.
        group=group or f"t{secrets.token_hex(4)}",
        session_expiry_s=60,
    )
    ingest.start(wait_s=10)
    return ingest


def stored(node: Node) -> Counter[tuple[str, int]]:
    return Counter(
        (r.signed.reading.device, r.signed.reading.seq) for r in node.store.iter_readings()
    )


def registered(node: Node) -> DeviceKey:
    key = DeviceKey.generate()
    node.register_device(key.public_key, f"dev-{key.did[-6:]}")
    return key


def test_readings_are_logged_and_acked_with_their_index(node: Node) -> None:
    url = shared_broker()
    ingest = consume(node, url)
    key = registered(node)
    device = DeviceSide(url, [key.did])
    try:
        device.publish(key.did, encode_request([reading(key, 1), reading(key, 2)]), b"m1")
        device.publish(key.did, json.dumps(encode_reading(reading(key, 3))).encode(), b"m2")
        acks = {corr: body for _topic, corr, body in (device.next_ack(), device.next_ack())}
    finally:
        device.close()
        ingest.stop()
    assert [r["status"] for r in acks[b"m1"]["results"]] == ["accepted", "accepted"]
    assert acks[b"m2"]["results"][0]["status"] == "accepted"
    indices = [r["index"] for r in acks[b"m1"]["results"] + acks[b"m2"]["results"]]
    assert sorted(indices) == [0, 1, 2]
    by_seq = {r.signed.reading.seq: r.index for r in node.store.iter_readings()}
    assert by_seq[3] == acks[b"m2"]["results"][0]["index"]
    assert node.metrics.accepted._value.get() == 3


def test_malformed_payloads_are_answered_counted_and_not_redelivered(node: Node) -> None:
    url = shared_broker()
    ingest = consume(node, url)
    key, other = registered(node), registered(node)
    device = DeviceSide(url, [key.did])
    try:
        device.publish(key.did, b"{not json", b"bad")
        # A message on key's topic carrying another device's reading: that one is refused.
        mixed = encode_request([reading(key, 1), reading(other, 1)])
        device.publish(key.did, mixed, b"mixed")
        acks = {corr: body for _t, corr, body in (device.next_ack(), device.next_ack())}
    finally:
        device.close()
        ingest.stop()
    bad = acks[b"bad"]["results"]
    assert len(bad) == 1 and bad[0]["reason"] == "malformed"
    assert "JSON is malformed" in bad[0]["detail"]
    mixed_results = acks[b"mixed"]["results"]
    assert mixed_results[0]["status"] == "accepted"
    assert mixed_results[1]["reason"] == "malformed"
    assert other.did in mixed_results[1]["detail"]
    assert stored(node) == Counter({(key.did, 1): 1})
    metrics = node.metrics
    assert metrics.requests_rejected.labels("malformed")._value.get() == 1
    # Acknowledged, so a new consumer on the same session gets nothing more.
    again = consume(node, url)
    again.stop()
    assert stored(node) == Counter({(key.did, 1): 1})


def test_duplicate_delivery_is_stored_once_and_answered_as_replay(node: Node) -> None:
    url = shared_broker()
    ingest = consume(node, url)
    key = registered(node)
    device = DeviceSide(url, [key.did])
    body = encode_request([reading(key, 1), reading(key, 2)])
    try:
        device.publish(key.did, body, b"first")
        first = device.next_ack()[2]["results"]
        device.publish(key.did, body, b"again")
        second = device.next_ack()[2]["results"]
    finally:
        device.close()
        ingest.stop()
    assert [r["status"] for r in first] == ["accepted", "accepted"]
    assert [r["reason"] for r in second] == ["replay", "replay"]
    assert [(r["id"], r["index"]) for r in second] == [(r["id"], r["index"]) for r in first]
    assert stored(node) == Counter({(key.did, 1): 1, (key.did, 2): 1})


def test_messages_sent_while_veriot_is_down_are_delivered_after_restart(node: Node) -> None:
    url = shared_broker()
    group = f"t{secrets.token_hex(4)}"
    client_id = f"test-ingest-{secrets.token_hex(4)}"
    key = registered(node)

    def start() -> MqttIngest:
        mqtt = MqttIngest(node.ingest, url, client_id=client_id, group=group, session_expiry_s=60)
        mqtt.start(wait_s=10)
        return mqtt

    start().stop()  # the persistent session now exists on the broker
    device = DeviceSide(url, [key.did])
    try:
        for seq in range(1, 6):
            device.publish(key.did, encode_request([reading(key, seq)]))
        ingest = start()
        acks = [device.next_ack()[2]["results"][0]["status"] for _ in range(5)]
        ingest.stop()
    finally:
        device.close()
    assert acks == ["accepted"] * 5
    assert stored(node) == Counter({(key.did, s): 1 for s in range(1, 6)})


def test_ingest_reconnects_after_the_broker_drops_it(node: Node, tmp_path: Path) -> None:
    broker = PrivateBroker(tmp_path / "broker")
    broker.start()
    key = registered(node)
    ingest = consume(node, broker.url)
    try:
        device = DeviceSide(broker.url, [key.did])
        device.publish(key.did, encode_request([reading(key, 1)]))
        assert device.next_ack()[2]["accepted"] == 1
        device.close()
        broker.kill()
        broker.start()
        device = DeviceSide(broker.url, [key.did])
        ingest.link.wait_connected(15)
        device.publish(key.did, encode_request([reading(key, 2)]))
        assert device.next_ack()[2]["accepted"] == 1
        device.close()
    finally:
        ingest.stop()
        broker.stop()
    assert stored(node) == Counter({(key.did, 1): 1, (key.did, 2): 1})


def test_start_mqtt_names_an_unreachable_broker(tmp_path: Path) -> None:
    from tests.conftest import free_port

    url = f"mqtt://127.0.0.1:{free_port()}"
    node = open_node(Settings(data_dir=tmp_path / "d", use_chain=False))
    node.start()
    node.settings = node.settings.model_copy(update={"mqtt": url})
    try:
        with pytest.raises(MqttError, match=f"127.0.0.1:{url.rsplit(':', 1)[1]}"):
            start_mqtt(node, wait_s=1)
    finally:
        node.stop()
