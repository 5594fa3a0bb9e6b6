"""Readings/s through MQTT at QoS 1, end to end, against the broker's own ceiling.

Prints, from one run on this machine:
- baseline: readings/s the broker carries at QoS 1 from a publisher to a subscriber that
  acknowledges each message and does nothing else (the same messages as below);
- veriot: readings/s from the devices' first publish to the last ack on their acks topics,
  with `MqttIngest` and a node on SQLite in this process and the devices in another
  (target >= 20,000/s on 2 cores),
  and its ratio to the baseline. Devices send one signed batch of 100 readings per message.

Needs a broker: $VERIOT_TEST_MQTT or mqtt://127.0.0.1:1883. Usage: python bench/mqtt.py
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import secrets
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from veriot.bootstrap import open_node
from veriot.config import Settings
from veriot.core.types import Reading, Record
from veriot.core.wire import encode_batch
from veriot.device import DeviceKey, sign_batch
from veriot.ingest.mqtt import MqttIngest
from veriot.ingest.mqtt_link import MqttUrl
from veriot.ingest.mqtt_messages import acks_topic, readings_topic

PER_MESSAGE = 100


OnMessage = Callable[[paho.Client, Any, paho.MQTTMessage], None]


def client(
    url: MqttUrl, on_message: OnMessage | None = None, manual_ack: bool = False
) -> paho.Client:
    c = paho.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"bench-{secrets.token_hex(4)}",
        protocol=paho.MQTTv5,
        manual_ack=manual_ack,
    )
    c.max_inflight_messages_set(1000)
    if on_message is not None:
        c.on_message = on_message
    c.connect(url.host, url.port)
    c.loop_start()
    return c


def bodies(keys: list[DeviceKey], messages: int) -> list[tuple[str, bytes]]:
    out = []
    now = time.time()
    for m in range(messages):
        key = keys[m % len(keys)]
        seq0 = 1 + (m // len(keys)) * PER_MESSAGE
        readings = [
            Reading(key.did, seq0 + i, (Record("temperature", 4.0 + i % 7 / 10, now, "Cel"),))
            for i in range(PER_MESSAGE)
        ]
        compact, _ = sign_batch(key, readings)
        out.append((key.did, json.dumps({"batches": [encode_batch(compact)]}).encode()))
    return out


def publish_all(url: MqttUrl, messages: list[tuple[str, bytes]], done: threading.Event) -> float:
    pub = client(url)
    start = time.perf_counter()
    for device, body in messages:
        pub.publish(readings_topic(device), body, qos=1)
    assert done.wait(300), "not everything arrived"
    elapsed = time.perf_counter() - start
    pub.disconnect()
    pub.loop_stop()
    return elapsed


def baseline(url: MqttUrl, messages: list[tuple[str, bytes]]) -> float:
    """Readings/s with a subscriber that only acknowledges."""
    done, count = threading.Event(), [0]

    def on_message(c: paho.Client, userdata: object, msg: paho.MQTTMessage) -> None:
        c.ack(msg.mid, msg.qos)
        count[0] += 1
        if count[0] == len(messages):
            done.set()

    group = f"bench{secrets.token_hex(3)}"
    sub = client(url, on_message, manual_ack=True)
    sub.subscribe(f"$share/{group}/veriot/v1/+/readings", qos=1)
    time.sleep(0.3)
    elapsed = publish_all(url, messages, done)
    sub.disconnect()
    sub.loop_stop()
    return len(messages) * PER_MESSAGE / elapsed


def devices(
    url: str,
    dids: list[str],
    messages: list[tuple[str, bytes]],
    out: multiprocessing.Queue[tuple[float, int]],
) -> None:
    """The devices, in a process of their own (as devices are): publish every message and
    wait for veriot's ack of each; puts (seconds, readings accepted) on `out`."""
    done, accepted, acks = threading.Event(), [0], [0]

    def on_ack(c: paho.Client, userdata: object, msg: paho.MQTTMessage) -> None:
        accepted[0] += json.loads(msg.payload)["accepted"]
        acks[0] += 1
        if acks[0] == len(messages):
            done.set()

    listener = client(MqttUrl.parse(url), on_ack)
    for did in dids:
        listener.subscribe(acks_topic(did), qos=1)
    time.sleep(0.3)
    try:
        elapsed = publish_all(MqttUrl.parse(url), messages, done)
    finally:
        listener.disconnect()
        listener.loop_stop()
    out.put((elapsed, accepted[0]))


def through_veriot(url: str, keys: list[DeviceKey], messages: list[tuple[str, bytes]]) -> float:
    data = Path(tempfile.mkdtemp(prefix="veriot-bench-mqtt-"))
    node = open_node(Settings(data_dir=data))
    node.start()
    for k in keys:
        node.register_device(k.public_key, k.did[-8:])
    ingest = MqttIngest(
        node.ingest,
        url,
        client_id=f"bench-{secrets.token_hex(4)}",
        group=f"b{secrets.token_hex(3)}",
        session_expiry_s=0,
    )
    ingest.start(wait_s=10)
    out: multiprocessing.Queue[tuple[float, int]] = multiprocessing.Queue()
    side = multiprocessing.Process(target=devices, args=(url, [k.did for k in keys], messages, out))
    try:
        side.start()
        elapsed, accepted = out.get(timeout=600)
        elapsed, accepted = float(elapsed), int(accepted)
        side.join()
    finally:
        ingest.stop()
        node.stop()
        shutil.rmtree(data, ignore_errors=True)
    assert accepted == len(messages) * PER_MESSAGE, f"accepted {accepted}"
    return accepted / elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=1000, help="messages of 100 readings")
    args = parser.parse_args()
    url = os.environ.get("VERIOT_TEST_MQTT", "mqtt://127.0.0.1:1883")
    keys = [DeviceKey.generate() for _ in range(20)]
    messages = bodies(keys, args.messages)
    base = baseline(MqttUrl.parse(url), messages)
    rate = through_veriot(url, keys, messages)
    print(f"cores: {len(os.sched_getaffinity(0))}, broker {url}, {PER_MESSAGE} readings/message")
    print(f"baseline: QoS 1 publish + receive + ack, no processing ... {base:12,.0f} readings/s")
    print(
        f"veriot: publish -> verify -> durable -> ack, end to end ..... {rate:12,.0f} readings/s"
        f"   = {rate / base:.2f} x baseline (target >= 20,000/s)"
    )


if __name__ == "__main__":
    main()
