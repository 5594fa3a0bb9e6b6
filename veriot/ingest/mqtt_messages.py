"""What travels over MQTT: topics, device payloads, verdict acks, and the retry of a
sequencing step the store could not take.

    veriot/v1/{device}/readings   device -> veriot   one signed reading, or a request body
                                                     ({"readings": [...], "batches": [...]})
    veriot/v1/{device}/acks       veriot -> device   {"results": [verdict, ...],
                                                      "accepted": n, "rejected": n}

`{device}` is the device's did. Every reading of a message must name the topic's device;
one that does not is rejected as malformed (a device can only speak for itself on its
topic, which is what broker ACLs grant it). An ack echoes the MQTT 5 Correlation Data of
the message it answers, so a sender can match acks to what it sent.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any, Generic, TypeVar

import msgspec

from veriot.core.errors import DecodeError
from veriot.core.types import SecurityEvent, SignedReading
from veriot.core.wire import CompactBatch, decode_reading, decode_request
from veriot.ingest.mqtt_link import MqttLink
from veriot.ingest.verdict import Reason, Verdict, encode_verdicts, rejected
from veriot.ingest.verify import Checked, CheckResult, Verifier

log = logging.getLogger(__name__)

TOPIC_ROOT = "veriot/v1"
READINGS_FILTER = f"{TOPIC_ROOT}/+/readings"
DEFAULT_GROUP = "veriot"

RETRY_DELAYS_S = (0.2, 0.5, 1.0, 2.0, 3.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0)
"""Waits between attempts to sequence a message while the store is unavailable (~50 s in
all); after the last, the readings are answered `unavailable` for the sender to resend."""


def readings_topic(device: str) -> str:
    return f"{TOPIC_ROOT}/{device}/readings"


def acks_topic(device: str) -> str:
    return f"{TOPIC_ROOT}/{device}/acks"


def shared_filter(group: str) -> str:
    """The MQTT 5 shared subscription through which a group of consumers splits the load."""
    return f"$share/{group}/{READINGS_FILTER}"


def device_of(topic: str) -> str | None:
    """The {device} of a readings topic, or None when `topic` is not one."""
    parts = topic.split("/")
    if len(parts) != 4 or f"{parts[0]}/{parts[1]}" != TOPIC_ROOT or parts[3] != "readings":
        return None
    return parts[2] or None


def decode_payload(payload: bytes) -> tuple[list[SignedReading], list[CompactBatch]]:
    """A readings message: one reading, or a request body. Raises DecodeError saying why
    it is neither."""
    try:
        request = decode_request(payload)
        return request.readings, request.batches
    except DecodeError as as_request:
        try:
            return [decode_reading(payload)], []
        except DecodeError as as_reading:
            if str(as_reading) == str(as_request):
                raise DecodeError(f"payload does not decode: {as_request}") from None
            raise DecodeError(
                f"payload is neither one reading ({as_reading}) nor a request body ({as_request})"
            ) from None


def check_message(verifier: Verifier, device: str, payload: bytes, now: float) -> CheckResult:
    """Decodes and verifies a message published on `device`'s readings topic: one item per
    reading, in payload order (readings, then each batch's). Readings of another device are
    rejected as malformed. Raises DecodeError for a payload that does not decode.
    CPU-bound and thread-safe."""
    readings, batches = decode_payload(payload)
    mine = [r for r in readings if r.reading.device == device]
    my_batches = [b for b in batches if b.device == device]
    if len(mine) == len(readings) and len(my_batches) == len(batches):
        return verifier.check(readings, batches, now)
    checked = verifier.check(mine, my_batches, now)
    items = iter(checked.items)
    out: list[Checked | Verdict] = []
    for r in readings:
        if r.reading.device == device:
            out.append(next(items))
        else:
            out.append(_foreign(r.reading.device, device))
    for b in batches:
        for _ in b.readings:
            out.append(next(items) if b.device == device else _foreign(b.device, device))
    return CheckResult(out, checked.events)


def _foreign(named: str, topic_device: str) -> Verdict:
    return rejected(
        Reason.MALFORMED,
        f"the reading names device {named} but was published on the topic of {topic_device}",
    )


def malformed(exc: Exception) -> list[Verdict]:
    """The single verdict that answers a payload that does not decode."""
    return [rejected(Reason.MALFORMED, str(exc))]


def encode_acks(verdicts: Sequence[Verdict]) -> bytes:
    """The ack payload: the same JSON as the HTTP answer to a batch of readings."""
    return encode_verdicts(verdicts)


def verdict_from_json(doc: dict[str, object]) -> Verdict:
    """The inverse of Verdict.to_json."""
    index = doc.get("index")
    ident = doc.get("id")
    if doc.get("status") == "accepted":
        return Verdict(
            True,
            id=str(ident),
            index=int(index) if isinstance(index, int) else None,
            gap=bool(doc.get("gap")),
        )
    reason = doc.get("reason")
    return Verdict(
        False,
        id=str(ident) if ident is not None else None,
        index=int(index) if isinstance(index, int) else None,
        reason=Reason(reason) if isinstance(reason, str) else None,
        detail=str(doc.get("detail", "")),
    )


SubmitFn = Callable[[Sequence[Checked | Verdict], Sequence[SecurityEvent]], Future[list[Verdict]]]


def sequence_with_retry(
    submit: SubmitFn,
    result: CheckResult,
    done: Callable[[list[Verdict]], None],
    delays: Sequence[float] = RETRY_DELAYS_S,
) -> None:
    """Submits `result` to the sequencer and calls `done(verdicts)` once it is sequenced.

    When the store was unavailable, the whole message is submitted again after each of
    `delays` (readings an earlier attempt did store come back as replays carrying their
    log index, so a retry never stores anything twice); `done` then gets the last
    attempt's verdicts. Security events are recorded with the first attempt only.
    """

    def attempt(n: int, events: Sequence[SecurityEvent]) -> None:
        future = submit(result.items, events)
        future.add_done_callback(lambda f: settle(n, f))

    def settle(n: int, future: Future[list[Verdict]]) -> None:
        try:
            verdicts = future.result()
        except Exception as exc:  # the sequencer itself failed: answer, do not hang
            log.exception("sequencing failed")
            verdicts = [
                v if isinstance(v, Verdict) else rejected(Reason.UNAVAILABLE, str(exc), v.id)
                for v in result.items
            ]
        if n < len(delays) and any(v.reason is Reason.UNAVAILABLE for v in verdicts):
            if n == 0:
                log.warning("the store is unavailable; retrying a message (%s)", _detail(verdicts))
            timer = threading.Timer(delays[n], attempt, (n + 1, ()))
            timer.daemon = True
            timer.start()
            return
        done(verdicts)

    attempt(0, result.events)


def _detail(verdicts: Sequence[Verdict]) -> str:
    return next((v.detail for v in verdicts if v.reason is Reason.UNAVAILABLE), "")


class Inbound(msgspec.Struct, frozen=True):
    """A readings message as received: who to answer and how to acknowledge it."""

    device: str
    payload: bytes
    mid: int
    qos: int
    generation: int
    correlation: bytes | None


def inbound_from(message: object, generation: int) -> Inbound | None:
    """An Inbound for a paho message on a readings topic, None for any other topic."""
    topic: str = getattr(message, "topic", "")
    device = device_of(topic)
    if device is None:
        return None
    props = getattr(message, "properties", None)
    corr = getattr(props, "CorrelationData", None) if props is not None else None
    return Inbound(
        device=device,
        payload=bytes(getattr(message, "payload", b"")),
        mid=int(getattr(message, "mid", 0)),
        qos=int(getattr(message, "qos", 0)),
        generation=generation,
        correlation=bytes(corr) if corr is not None else None,
    )


T = TypeVar("T")


class CheckPipeline(Generic[T]):
    """Verifies messages on `threads` threads and delivers the results in arrival order,
    so that readings reach the sequencer in the order the broker delivered them.

    `check` returns a CheckResult, or the verdicts answering a payload that did not decode;
    `deliver` runs on the pipeline's own thread.
    """

    def __init__(
        self,
        check: Callable[[Inbound], T],
        deliver: Callable[[Inbound, T | list[Verdict]], None],
        threads: int,
    ) -> None:
        import os
        import queue
        from concurrent.futures import ThreadPoolExecutor

        self._check = check
        self._deliver = deliver
        self._pool = ThreadPoolExecutor(
            max(1, threads or len(os.sched_getaffinity(0))), thread_name_prefix="veriot-mqtt-check"
        )
        self._queue: queue.Queue[tuple[Inbound, Future[T]] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="veriot-mqtt-order", daemon=True)
        self._thread.start()

    def put(self, inbound: Inbound) -> None:
        self._queue.put((inbound, self._pool.submit(self._check, inbound)))

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join()
        self._pool.shutdown()

    def _run(self) -> None:
        while True:
            entry = self._queue.get()
            if entry is None:
                return
            inbound, future = entry
            result: T | list[Verdict]
            try:
                result = future.result()
            except Exception as exc:  # a bug, not bad input: answer rather than stall
                log.exception("checking a message from %s failed", inbound.device)
                result = [rejected(Reason.UNAVAILABLE, f"internal error: {exc}")]
            try:
                self._deliver(inbound, result)
            except Exception:
                log.exception("handing on a message from %s failed", inbound.device)


class PipelineConsumer:
    """What every veriot MQTT consumer shares: a link to the broker, subscribed at QoS 1
    with manual acks to `subscription`, whose messages feed a CheckPipeline. Subclasses
    build their pipeline in `_new_pipeline` and handle messages in `_on_message`."""

    def __init__(self, url: str, client_id: str, subscription: str, session_expiry_s: int) -> None:
        self._pipeline: CheckPipeline[Any] | None = None
        self.link = MqttLink(
            url,
            client_id,
            subscriptions=[(subscription, 1)],
            on_message=self._on_message,
            manual_ack=True,
            session_expiry_s=session_expiry_s,
        )

    def _on_message(self, message: Any, generation: int) -> None:
        raise NotImplementedError

    def _new_pipeline(self) -> CheckPipeline[Any]:
        raise NotImplementedError

    def start(self, wait_s: float | None = None) -> None:
        """Starts consuming in the background. With `wait_s`, waits that long for the first
        connection and raises MqttError if there is none (it keeps retrying otherwise)."""
        if self._pipeline is None:
            self._pipeline = self._new_pipeline()
        self.link.start()
        if wait_s is not None:
            self.link.wait_connected(wait_s)

    def stop(self) -> None:
        """Stops taking messages; those in progress finish first. Call before the node's
        sequencer stops."""
        self.link.stop()
        if self._pipeline is not None:
            self._pipeline.stop()
            self._pipeline = None
