"""Scale-out over MQTT: stateless workers verify, one sequencer writes the log.

    devices --veriot/v1/{did}/readings--> $share/{group}: worker 1 .. worker N
        (decode + verify signatures on every core; a read-only device cache)
    workers --{internal topic}, QoS 1--> sequencer (the one writer of the log)
        (replay / equivocation / gaps, group commit, checkpoints)
    sequencer --veriot/v1/{did}/acks--> devices

Each hop is QoS 1 with a persistent session and manual acknowledgement: a worker PUBACKs
a device's message only once the broker has its forward; the sequencer PUBACKs a forward
only once its readings are durable and the device's ack is with the broker. A crash at
any point leaves the message unacknowledged at the broker, which redelivers it; the
sequencer answers what it already logged as a replay. The sequencer trusts what workers
forward (it does not verify signatures again), so only workers may publish the internal
topic (broker ACLs; see docs/deployment.md).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import msgspec

from veriot.core import canonical
from veriot.core.errors import DecodeError, InputError
from veriot.core.types import SecurityEvent, SecurityEventKind
from veriot.core.wire import decode_reading, encode_reading
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
    verdict_from_json,
)
from veriot.ingest.service import IngestService
from veriot.ingest.verdict import Verdict
from veriot.ingest.verify import Checked, CheckResult, Verifier
from veriot.ledger.hashing import leaf_hash
from veriot.ports import Clock

__all__ = [
    "DEFAULT_INTERNAL_TOPIC",
    "MqttSequencer",
    "MqttWorker",
    "decode_forward",
    "encode_forward",
]

log = logging.getLogger(__name__)

DEFAULT_INTERNAL_TOPIC = "veriot/internal/v1/checked"


# --- what a worker forwards ------------------------------------------------------------


class _Event(msgspec.Struct, array_like=True):
    device: str
    kind: str
    time: float
    seq: int | None
    detail: str


class _Forward(msgspec.Struct):
    """`readings` (wire format, verified) and `verdicts` (position, Verdict.to_json) make
    up the message's `count` items: each position not in `verdicts` takes the next reading."""

    device: str
    corr: bytes | None
    count: int
    readings: list[msgspec.Raw]
    verdicts: list[tuple[int, dict[str, Any]]]
    events: list[_Event]


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(_Forward)


def encode_forward(inbound: Inbound, result: CheckResult | list[Verdict]) -> bytes:
    """The internal message for one device message: its checked readings and verdicts,
    in order, its security events, and where to send the ack."""
    items = result if isinstance(result, list) else result.items
    readings: list[msgspec.Raw] = []
    verdicts: list[tuple[int, dict[str, Any]]] = []
    for position, item in enumerate(items):
        if isinstance(item, Verdict):
            verdicts.append((position, item.to_json()))
        else:
            readings.append(msgspec.Raw(_encoder.encode(encode_reading(item.signed))))
    events = (
        []
        if isinstance(result, list)
        else [_Event(e.device, e.kind.value, e.time, e.seq, e.detail) for e in result.events]
    )
    forward = _Forward(inbound.device, inbound.correlation, len(items), readings, verdicts, events)
    return _encoder.encode(forward)


def decode_forward(payload: bytes) -> tuple[str, bytes | None, CheckResult]:
    """(device, correlation, checked readings and verdicts) from a worker's message.
    Rebuilds each reading's id and leaf (hashing only: signatures were verified by the
    worker). Raises DecodeError for a payload that is not a forward."""
    try:
        forward = _decoder.decode(payload)
        items: list[Checked | Verdict] = []
        verdicts = dict(forward.verdicts)
        readings = iter(forward.readings)
        for position in range(forward.count):
            verdict = verdicts.get(position)
            if verdict is None:
                signed = decode_reading(bytes(next(readings)))
                message = canonical.reading_message(signed.reading)
                leaf = canonical.reading_leaf(signed, message)
                items.append(
                    Checked(
                        signed.reading,
                        canonical.reading_id(message),
                        leaf_hash(leaf),
                        message,
                        signature=signed.signature,
                        batch=signed.batch,
                    )
                )
            else:
                items.append(verdict_from_json(verdict))
        result = CheckResult(
            items,
            [
                SecurityEvent(e.device, SecurityEventKind(e.kind), e.time, e.seq, e.detail)
                for e in forward.events
            ],
        )
    except (msgspec.MsgspecError, InputError, ValueError, StopIteration) as exc:
        raise DecodeError(f"internal message is not a worker's forward: {exc}") from None
    return forward.device, forward.corr, result


# --- the worker ------------------------------------------------------------------------


class MqttWorker(PipelineConsumer):
    """Verifies device messages from the shared subscription and forwards them.

    `verifier` looks devices up in a read-only cache of the shared store. `client_id`
    must be stable across restarts: Mosquitto keeps a dead worker's unacknowledged
    messages in its session until a worker with the same id comes back.
    """

    def __init__(
        self,
        verifier: Verifier,
        clock: Clock,
        url: str,
        *,
        client_id: str,
        group: str = DEFAULT_GROUP,
        internal_topic: str = DEFAULT_INTERNAL_TOPIC,
        threads: int = 0,
        session_expiry_s: int = DEFAULT_SESSION_EXPIRY_S,
    ) -> None:
        self._verifier = verifier
        self._clock = clock
        self._topic = internal_topic
        self._threads = threads
        self.forwarded = 0
        super().__init__(url, client_id, shared_filter(group), session_expiry_s)

    def _new_pipeline(self) -> CheckPipeline[Any]:
        return CheckPipeline(self._check, self._forward, self._threads)

    def _on_message(self, message: object, generation: int) -> None:
        inbound = inbound_from(message, generation)
        if inbound is not None and self._pipeline is not None:
            self._pipeline.put(inbound)

    def _check(self, inbound: Inbound) -> CheckResult | list[Verdict]:
        try:
            return check_message(self._verifier, inbound.device, inbound.payload, self._clock.now())
        except DecodeError as exc:
            return malformed(exc)

    def _forward(self, inbound: Inbound, result: CheckResult | list[Verdict]) -> None:
        link = self.link
        link.publish(
            self._topic,
            encode_forward(inbound, result),
            on_acked=lambda: link.ack(inbound.mid, inbound.qos, inbound.generation),
        )
        self.forwarded += 1


# --- the sequencer ---------------------------------------------------------------------


class MqttSequencer(PipelineConsumer):
    """Sequences what the workers forward into `ingest`'s log and answers the devices.

    `ingest` is a node's IngestService (its sequencer is the one writer of the log).
    """

    def __init__(
        self,
        ingest: IngestService,
        url: str,
        *,
        client_id: str,
        internal_topic: str = DEFAULT_INTERNAL_TOPIC,
        session_expiry_s: int = DEFAULT_SESSION_EXPIRY_S,
    ) -> None:
        self._ingest = ingest
        super().__init__(url, client_id, internal_topic, session_expiry_s)

    def _new_pipeline(self) -> CheckPipeline[Any]:
        # One decoding thread keeps the workers' order; hashing is cheap next to commits.
        return CheckPipeline(self._decode, self._sequence, threads=1)

    def _on_message(self, message: Any, generation: int) -> None:
        if self._pipeline is None:
            return
        self._pipeline.put(
            Inbound(
                device="",
                payload=bytes(message.payload),
                mid=int(message.mid),
                qos=int(message.qos),
                generation=generation,
                correlation=None,
            )
        )

    def _decode(self, inbound: Inbound) -> tuple[str, bytes | None, CheckResult]:
        return decode_forward(inbound.payload)

    def _sequence(
        self, inbound: Inbound, decoded: tuple[str, bytes | None, CheckResult] | list[Verdict]
    ) -> None:
        if isinstance(decoded, list):  # the pipeline's answer to an internal failure
            log.error("dropping an internal message that could not be decoded")
            self.link.ack(inbound.mid, inbound.qos, inbound.generation)
            return
        device, corr, result = decoded
        sequence_with_retry(
            self._ingest.sequencer.submit,
            result,
            lambda verdicts: self._answer(inbound, device, corr, verdicts),
        )

    def _answer(
        self, inbound: Inbound, device: str, corr: bytes | None, verdicts: Sequence[Verdict]
    ) -> None:
        self._ingest.count(verdicts)
        link = self.link
        link.publish(
            acks_topic(device),
            encode_acks(verdicts),
            correlation=corr,
            on_acked=lambda: link.ack(inbound.mid, inbound.qos, inbound.generation),
        )
