"""A device's side of MQTT in tests: publish readings at QoS 1, collect the acks."""

from __future__ import annotations

import json
import queue
import secrets
import time
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from veriot.core.types import Record, SignedReading
from veriot.device import DeviceKey, sign_reading
from veriot.ingest.mqtt_link import MqttUrl
from veriot.ingest.mqtt_messages import acks_topic, readings_topic


def reading(key: DeviceKey, seq: int, value: float = 4.2) -> SignedReading:
    now = time.time()
    return sign_reading(
        key, seq, (Record("temperature", value, now, "Cel"), Record("humidity", 80.0, now, "%RH"))
    )


class DeviceSide:
    """One MQTT connection speaking for any number of devices."""

    def __init__(self, url: str, devices: list[str]) -> None:
        where = MqttUrl.parse(url)
        self.acks: queue.Queue[tuple[str, bytes | None, dict[str, Any]]] = queue.Queue()
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"test-device-{secrets.token_hex(4)}",
            protocol=paho.MQTTv5,
        )
        self.client.on_message = self._on_message
        self.client.max_inflight_messages_set(1000)
        self.client.connect(where.host, where.port)
        self.client.loop_start()
        for device in devices:
            self.client.subscribe(acks_topic(device), qos=1)[1]
        time.sleep(0.2)  # let the SUBACKs land before anything is answered

    def _on_message(self, client: paho.Client, userdata: object, msg: paho.MQTTMessage) -> None:
        corr = getattr(msg.properties, "CorrelationData", None)
        self.acks.put((msg.topic, corr, json.loads(msg.payload)))

    def publish(self, device: str, payload: bytes, correlation: bytes | None = None) -> None:
        props = None
        if correlation is not None:
            props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            props.CorrelationData = correlation
        info = self.client.publish(readings_topic(device), payload, qos=1, properties=props)
        info.wait_for_publish(timeout=10)
        assert info.is_published()

    def next_ack(self, timeout: float = 15) -> tuple[str, bytes | None, dict[str, Any]]:
        return self.acks.get(timeout=timeout)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
