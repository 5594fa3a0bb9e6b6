"""`veriot ai recheck`: a third party re-checks an alert from proven readings only."""

from __future__ import annotations

import random
import subprocess
import sys
import time
from dataclasses import replace

from tests.conftest import LiveService
from veriot.core.types import Record, StoredReading
from veriot.core.wire import encode_reading
from veriot.device import DeviceKey, sign_reading
from veriot.storage.testing import tamper_sqlite_readings


def raise_alert(service: LiveService) -> tuple[int, DeviceKey]:
    """Registers a reefer, sends 50 normal readings and a door-open spike; returns the
    alert's log index."""
    key = DeviceKey.generate()
    with service.client(operator=True) as c:
        body = {"name": "reefer", "type": "cold-chain", "public_key": key.public_key.hex()}
        assert c.post("/v1/devices", json=body).status_code == 201
    rng, start = random.Random(7), time.time() - 3600
    readings = [
        sign_reading(
            key, i + 1, (Record("temperature", 4.0 + rng.gauss(0, 0.05), start + i * 60, "Cel"),)
        )
        for i in range(50)
    ]
    readings.append(sign_reading(key, 51, (Record("temperature", 14.0, start + 50 * 60, "Cel"),)))
    with service.client() as c:
        r = c.post("/v1/readings", json={"readings": [encode_reading(s) for s in readings]})
    assert r.json()["accepted"] == 51
    service.node.alerts.flush()  # type: ignore[attr-defined]
    with service.client(operator=True) as c:
        alerts = c.get("/v1/alerts", params={"device": key.did}).json()["items"]
    assert alerts, "the spike raised no alert"
    return int(alerts[0]["index"]), key


def recheck(service: LiveService, index: int, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "veriot.cli.main", "ai", "recheck", str(index),
         "--url", service.url, "--api-key", service.api_key, *extra],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_an_alert_is_reproduced_from_proven_readings(service: LiveService) -> None:
    index, _ = raise_alert(service)
    log_key = service.node.log_public_key.hex()  # type: ignore[attr-defined]
    ok = recheck(service, index, "--log-key", log_key)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "REPRODUCED" in ok.stdout and "51 proven readings" in ok.stdout

    wrong_key = recheck(service, index, "--log-key", "00" * 32)
    assert wrong_key.returncode == 1 and "NOT VERIFIED" in wrong_key.stdout


def test_a_reading_edited_behind_the_logs_back_fails_the_recheck(service: LiveService) -> None:
    index, _ = raise_alert(service)

    def edit(readings: dict[int, StoredReading]) -> None:
        stored = readings[10]
        edited = bytearray(stored.message or b"")
        edited[-12] ^= 0x40  # the value of its one record
        readings[10] = replace(stored, message=bytes(edited))

    tamper_sqlite_readings(service.data_dir / "veriot.db", edit)
    bad = recheck(service, index)
    assert bad.returncode == 1 and "NOT VERIFIED" in bad.stdout
    assert "log index 10" in bad.stdout
