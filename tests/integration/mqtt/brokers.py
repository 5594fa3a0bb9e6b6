"""Brokers for MQTT tests: the shared Mosquitto (127.0.0.1:1883, or $VERIOT_TEST_MQTT),
and private Mosquitto processes on free ports that a test may kill and restart."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from tests.conftest import free_port, service_missing
from veriot.ingest.mqtt_link import MqttUrl

TEST_MQTT_ENV = "VERIOT_TEST_MQTT"
DEFAULT_TEST_MQTT = "mqtt://127.0.0.1:1883"
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def shared_broker() -> str:
    """The URL of the shared test broker; skips (fails under CI) when it is not running."""
    url = os.environ.get(TEST_MQTT_ENV, DEFAULT_TEST_MQTT)
    where = MqttUrl.parse(url)
    if not _reachable(where.host, where.port):
        service_missing(f"MQTT broker at {url} (start it with .ci/services.sh)")
    return url


class PrivateBroker:
    """A Mosquitto of the test's own on a free port, persisting to `directory`."""

    def __init__(self, directory: Path) -> None:
        if not Path(MOSQUITTO).exists():
            service_missing("the mosquitto executable")
        self.directory = directory
        self.port = free_port()
        self.url = f"mqtt://127.0.0.1:{self.port}"
        self.config = directory / "mosquitto.conf"
        directory.mkdir(parents=True, exist_ok=True)
        self.config.write_text(
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous true\n"
            "persistence true\n"
            f"persistence_location {directory}/\n"
            "max_queued_messages 0\n"
            "max_inflight_messages 0\n"
        )
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [MOSQUITTO, "-c", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not _reachable("127.0.0.1", self.port):
            assert self.process.poll() is None, "private mosquitto exited at start"
            assert time.monotonic() < deadline, "private mosquitto did not start"
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: the broker loses whatever it held in memory only."""
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None
