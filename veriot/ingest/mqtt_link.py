"""One MQTT 5 connection as veriot's MQTT endpoints use it.

`MqttLink` wraps a paho client with what every endpoint (the ingest front door, the
scale-out workers and sequencer, the edge agent) needs:

- a persistent session (clean start off, a session expiry), so that QoS 1 messages not yet
  acknowledged are redelivered after a crash or a dropped connection;
- automatic reconnection with exponential backoff, the first connection included, and the
  subscriptions renewed on every connect (a broker that lost its state forgets them);
- manual acknowledgement: the caller PUBACKs an incoming message when its work is durable;
- `publish(..., on_acked=...)`: a callback once the broker has acknowledged a publish, so
  an incoming message can be acknowledged only after what it caused is safely handed on.

Acknowledgements carry the connection generation they belong to: a message received on an
earlier connection is redelivered by the broker on the new one, so acknowledging the old
packet id would acknowledge the wrong message (or none); such acks are dropped.
"""

from __future__ import annotations

import logging
import ssl
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from veriot.core.errors import InputError, VeriotError

log = logging.getLogger(__name__)

DEFAULT_PORT = 1883
DEFAULT_TLS_PORT = 8883
DEFAULT_KEEPALIVE_S = 30
DEFAULT_SESSION_EXPIRY_S = 24 * 3600
"""How long the broker keeps a disconnected endpoint's session and queued messages."""
RECONNECT_MIN_S = 0.25
RECONNECT_MAX_S = 5.0
RECEIVE_MAXIMUM = 1000
"""Incoming QoS 1 messages the broker may have unacknowledged with us at once: bounds the
memory a backlog takes while keeping the pipeline full."""
MAX_INFLIGHT = 1000
"""Outgoing QoS 1 messages on the wire at once (paho's default of 20 throttles ingest)."""

MessageHandler = Callable[["paho.MQTTMessage", int], None]
"""Called on paho's network thread with a message and the connection generation."""


def _nothing() -> None:
    pass


class MqttError(VeriotError):
    """The broker could not be reached, or refused what veriot asked of it."""


@dataclass(frozen=True, slots=True)
class MqttUrl:
    """Where the broker is: `mqtt://[user[:password]@]host[:port]` (`mqtts://` for TLS)."""

    host: str
    port: int
    username: str | None = None
    password: str | None = None
    tls: bool = False

    @classmethod
    def parse(cls, url: str) -> MqttUrl:
        """Raises InputError naming the problem for a URL that is not mqtt:// or mqtts://."""
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
            raise InputError(
                f"MQTT broker URL {url!r} has scheme {parts.scheme!r}; want mqtt:// or mqtts://"
            )
        tls = parts.scheme in ("mqtts", "ssl")
        if not parts.hostname:
            raise InputError(f"MQTT broker URL {url!r} names no host; want mqtt://HOST[:PORT]")
        try:
            port = parts.port or (DEFAULT_TLS_PORT if tls else DEFAULT_PORT)
        except ValueError as exc:
            raise InputError(f"MQTT broker URL {url!r}: {exc}") from None
        if parts.path not in ("", "/"):
            raise InputError(f"MQTT broker URL {url!r} has a path; want mqtt://HOST[:PORT]")
        return cls(
            host=parts.hostname,
            port=port,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            tls=tls,
        )

    def __str__(self) -> str:  # never shows the password
        user = f"{self.username}@" if self.username else ""
        return f"{'mqtts' if self.tls else 'mqtt'}://{user}{self.host}:{self.port}"


class MqttLink:
    """A persistent-session MQTT 5 client that reconnects by itself.

    `subscriptions` are (topic filter, qos) pairs subscribed on every connect;
    `on_message(message, generation)` runs on paho's network thread and must not block.
    With `manual_ack` the caller acknowledges each QoS 1 message with `ack`. `client_id`
    must be stable across restarts for the broker to keep the session, and unique.
    """

    def __init__(
        self,
        url: str,
        client_id: str,
        *,
        subscriptions: Sequence[tuple[str, int]] = (),
        on_message: MessageHandler | None = None,
        manual_ack: bool = False,
        session_expiry_s: int = DEFAULT_SESSION_EXPIRY_S,
        on_connect: Callable[[int], None] | None = None,
    ) -> None:
        self.url = MqttUrl.parse(url)
        self.client_id = client_id
        self._subscriptions = list(subscriptions)
        self._on_message = on_message
        self._on_connect_hook = on_connect
        self._session_expiry_s = session_expiry_s
        self._lock = threading.Lock()
        self._generation = 0
        self._pending: dict[int, Callable[[], None]] = {}
        self._early: set[int] = set()
        self.connected = threading.Event()
        """Set while connected with every subscription granted."""
        self.last_error = ""
        client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=paho.MQTTv5,
            manual_ack=manual_ack,
        )
        if self.url.username is not None:
            client.username_pw_set(self.url.username, self.url.password)
        if self.url.tls:
            client.tls_set_context(ssl.create_default_context())
        client.max_inflight_messages_set(MAX_INFLIGHT)
        client.max_queued_messages_set(0)
        client.reconnect_delay_set(RECONNECT_MIN_S, RECONNECT_MAX_S)  # type: ignore[arg-type]
        client.on_connect = self._handle_connect
        client.on_disconnect = self._handle_disconnect
        client.on_message = self._handle_message
        client.on_publish = self._handle_publish
        client.on_subscribe = self._handle_subscribe
        self._client = client
        self._started = False

    @property
    def generation(self) -> int:
        """Increases on every successful connect."""
        return self._generation

    def start(self) -> None:
        """Starts connecting in the background; returns at once. Reconnects forever."""
        if self._started:
            return
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = self._session_expiry_s
        props.ReceiveMaximum = RECEIVE_MAXIMUM
        self._client.connect_async(
            self.url.host,
            self.url.port,
            keepalive=DEFAULT_KEEPALIVE_S,
            clean_start=False,
            properties=props,
        )
        self._client.loop_start()
        self._started = True

    def wait_connected(self, timeout: float) -> None:
        """Blocks until connected and subscribed; raises MqttError naming the broker and
        the last failure after `timeout` seconds."""
        if not self.connected.wait(timeout):
            why = f": {self.last_error}" if self.last_error else ""
            raise MqttError(
                f"cannot connect to the MQTT broker at {self.url} within {timeout:g}s{why}"
            )

    def stop(self) -> None:
        """Disconnects cleanly (the session stays on the broker) and stops the thread."""
        if not self._started:
            return
        self._started = False
        self._client.disconnect()
        self._client.loop_stop()
        self.connected.clear()

    def publish(
        self,
        topic: str,
        payload: bytes,
        *,
        qos: int = 1,
        correlation: bytes | None = None,
        on_acked: Callable[[], None] | None = None,
    ) -> None:
        """Queues a publish (sent now, or after reconnecting). `on_acked` runs on the
        network thread once the broker has acknowledged it (QoS 1)."""
        props = None
        if correlation is not None:
            props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            props.CorrelationData = correlation
        info = self._client.publish(topic, payload, qos=qos, properties=props)
        if info.rc not in (paho.MQTT_ERR_SUCCESS, paho.MQTT_ERR_NO_CONN):
            raise MqttError(f"publish to {topic} failed: {paho.error_string(info.rc)}")
        if qos == 0:  # paho reported it as sent, inside publish()
            with self._lock:
                self._early.discard(info.mid)
            if on_acked is not None:
                on_acked()
            return
        # paho may report the PUBACK before publish() returns to us; it then lands in
        # _early. Our lock is never held while calling into paho, so no lock-order cycle.
        with self._lock:
            early = info.mid in self._early
            if early:
                self._early.discard(info.mid)
            else:
                self._pending[info.mid] = on_acked or _nothing
        if early and on_acked is not None:
            on_acked()

    def ack(self, mid: int, qos: int, generation: int) -> None:
        """PUBACKs message `mid` received on connection `generation`; dropped when the
        connection has changed since (the broker redelivers the message instead)."""
        if qos > 0 and generation == self._generation and self.connected.is_set():
            self._client.ack(mid, qos)

    # -- paho callbacks (network thread) ---------------------------------------------------

    def _handle_connect(
        self,
        client: paho.Client,
        userdata: object,
        flags: paho.ConnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason.is_failure:
            self.last_error = f"the broker refused the connection ({reason})"
            log.warning("MQTT broker at %s refused %s: %s", self.url, self.client_id, reason)
            return
        self._generation += 1
        self.last_error = ""
        if self._subscriptions:
            client.subscribe(self._subscriptions)
        else:
            self.connected.set()
        log.info(
            "connected to MQTT broker at %s as %s (session present: %s)",
            self.url,
            self.client_id,
            flags.session_present,
        )
        if self._on_connect_hook is not None:
            self._on_connect_hook(self._generation)

    def _handle_subscribe(
        self,
        client: paho.Client,
        userdata: object,
        mid: int,
        reasons: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        failed = [str(r) for r in reasons if r.is_failure]
        if failed:
            self.last_error = f"the broker refused the subscription ({', '.join(failed)})"
            log.error("MQTT broker at %s: %s", self.url, self.last_error)
            return
        self.connected.set()

    def _handle_disconnect(
        self,
        client: paho.Client,
        userdata: object,
        flags: paho.DisconnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        was = self.connected.is_set()
        self.connected.clear()
        if self._started:
            self.last_error = f"connection lost ({reason})"
            if was:
                log.warning(
                    "lost the MQTT broker at %s (%s); reconnecting with backoff", self.url, reason
                )

    def _handle_message(self, client: paho.Client, userdata: object, msg: paho.MQTTMessage) -> None:
        if self._on_message is not None:
            self._on_message(msg, self._generation)

    def _handle_publish(
        self,
        client: paho.Client,
        userdata: object,
        mid: int,
        reason: ReasonCode,
        properties: Properties,
    ) -> None:
        with self._lock:
            callback = self._pending.pop(mid, None)
            if callback is None:
                self._early.add(mid)
        if callback is not None:
            try:
                callback()
            except Exception:
                log.exception("callback after the broker acknowledged message %d failed", mid)
