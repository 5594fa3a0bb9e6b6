"""The MQTT front door: devices publish to `veriot/v1/{device}/readings`, veriot answers
each message on `veriot/v1/{device}/acks` (see mqtt_messages for the payloads).

    broker --$share/veriot/...--> check on N threads --(arrival order)--> sequencer
        --durable--> publish the ack --broker PUBACKs it--> PUBACK the device's message

Delivery is at least once (QoS 1, persistent session, manual acknowledgement): a message
is acknowledged to the broker only once its readings are durable and its ack is with the
broker, so after a crash the broker redelivers it, and the sequencer answers a reading
already in the log as a replay carrying its id and index. Nothing is stored twice.
Several veriot processes subscribed with the same `group` split the devices' messages
between them (an MQTT 5 shared subscription).
"""

from __future__ import annotations

import hashlib
import logging
import socket
from typing import TYPE_CHECKING, Any

from veriot.core.errors import DecodeError
from veriot.ingest.mqtt_link import DEFAULT_SESSION_EXPIRY_S
from veriot.ingest.mqtt_messages import (
    DEFAULT_GROUP,
    CheckPipeline,
    Inbound,
    PipelineConsumer,
    acks_topic,
    check_message,
    encode_acks,
    inbound_from,
    malformed,
    sequence_with_retry,
    shared_filter,
)
from veriot.ingest.service import IngestService
from veriot.ingest.verdict import Verdict
from veriot.ingest.verify import CheckResult

if TYPE_CHECKING:
    from veriot.bootstrap import Node

__all__ = ["MqttIngest", "default_client_id", "start_mqtt"]

log = logging.getLogger(__name__)

CONNECT_WAIT_S = 10.0


class MqttIngest(PipelineConsumer):
    """Consumes device readings from the broker at `url` into `ingest`.

    `client_id` names the persistent session; keep it stable across restarts (messages
    that arrived while the process was down wait in it) and unique per process. `threads`
    verify in parallel (0: one per core). Call `start()`, and `stop()` at the end.
    """

    def __init__(
        self,
        ingest: IngestService,
        url: str,
        *,
        client_id: str,
        group: str = DEFAULT_GROUP,
        threads: int = 0,
        session_expiry_s: int = DEFAULT_SESSION_EXPIRY_S,
    ) -> None:
        self._ingest = ingest
        self._threads = threads
        super().__init__(url, client_id, shared_filter(group), session_expiry_s)

    def _new_pipeline(self) -> CheckPipeline[Any]:
        return CheckPipeline(self._check, self._sequence, self._threads)

    # -- the pipeline --------------------------------------------------------------------

    def _on_message(self, message: object, generation: int) -> None:
        inbound = inbound_from(message, generation)
        pipeline = self._pipeline
        if inbound is None or pipeline is None:
            return  # not a readings topic (the subscription does not ask for it)
        pipeline.put(inbound)

    def _check(self, inbound: Inbound) -> CheckResult | list[Verdict]:
        try:
            return check_message(
                self._ingest.verifier, inbound.device, inbound.payload, self._ingest.clock.now()
            )
        except DecodeError as exc:
            self._ingest.metrics.requests_rejected.labels("malformed").inc()
            return malformed(exc)

    def _sequence(self, inbound: Inbound, result: CheckResult | list[Verdict]) -> None:
        if isinstance(result, list):
            self._answer(inbound, result)
            return
        sequence_with_retry(
            self._ingest.sequencer.submit, result, lambda verdicts: self._answer(inbound, verdicts)
        )

    def _answer(self, inbound: Inbound, verdicts: list[Verdict]) -> None:
        self._ingest.count(verdicts)
        link = self.link
        link.publish(
            acks_topic(inbound.device),
            encode_acks(verdicts),
            correlation=inbound.correlation,
            on_acked=lambda: link.ack(inbound.mid, inbound.qos, inbound.generation),
        )


def default_client_id(role: str, anchor: str) -> str:
    """A client id stable across restarts of the same deployment: `role`, the host, and a
    short hash of `anchor` (e.g. the data directory or store URL)."""
    digest = hashlib.sha256(anchor.encode()).hexdigest()[:10]
    return f"veriot-{role}-{socket.gethostname()}-{digest}"


def start_mqtt(node: Node, *, wait_s: float | None = CONNECT_WAIT_S) -> MqttIngest:
    """Starts MQTT ingest into a started node from `node.settings.mqtt`. Waits up to
    `wait_s` for the broker and raises MqttError naming it when it cannot be reached.
    Call `.stop()` on the result before `node.stop()`."""
    url = node.settings.mqtt
    if not url:
        from veriot.core.errors import InputError

        raise InputError("settings.mqtt is not set; want a broker URL like mqtt://127.0.0.1:1883")
    anchor = str(node.settings.data_dir.resolve())
    mqtt = MqttIngest(
        node.ingest,
        url,
        client_id=default_client_id("serve", anchor),
        threads=node.settings.verify_threads,
    )
    try:
        mqtt.start(wait_s=wait_s)
    except BaseException:
        mqtt.stop()
        raise
    log.info("ingesting from MQTT broker %s", mqtt.link.url)
    return mqtt
