"""`veriot serve --db postgresql://... --mqtt mqtt://...`: the real command on the real
engines, a device speaking MQTT, an auditor reading the proof over HTTP."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import psycopg
import pytest

from tests.conftest import free_port, service_missing
from tests.integration.mqtt.brokers import PrivateBroker
from tests.integration.mqtt.devices import DeviceSide, reading
from veriot.core.wire import encode_request
from veriot.device import DeviceKey
from veriot.ledger.bundle import bundle_from_json, verify_bundle
from veriot.storage.postgres import PostgresStore
from veriot.storage.testing import drop_schema, find_test_postgres, fresh_schema_name

VERIOT = [sys.executable, "-m", "veriot.cli.main"]


@pytest.fixture
def postgres_url() -> Iterator[str]:
    dsn, why = find_test_postgres()
    if dsn is None:
        service_missing(f"PostgreSQL ({why})")
        raise AssertionError("unreachable")
    schema = fresh_schema_name()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in dsn else "?"
    yield f"{dsn}{sep}options={quote(f'-csearch_path={schema}')}"
    drop_schema(dsn, schema)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[PrivateBroker]:
    node = PrivateBroker(tmp_path / "broker")
    node.start()
    yield node
    node.stop()


def test_serve_on_postgres_ingests_mqtt_and_proves_over_http(
    tmp_path: Path, postgres_url: str, broker: PrivateBroker
) -> None:
    data = tmp_path / "data"
    common = ["--data", str(data), "--db", postgres_url]
    made = subprocess.run(
        [*VERIOT, "apikey", "create", *common], capture_output=True, text=True, timeout=120
    )
    assert made.returncode == 0, made.stderr
    api_key = made.stdout.strip()
    port = free_port()
    log = (tmp_path / "serve.log").open("w")
    serve = subprocess.Popen(
        [*VERIOT, "serve", *common, "--mqtt", broker.url, "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    key = DeviceKey.generate()
    device = None
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{url}/healthz", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                alive = serve.poll() is None
                assert alive and time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
                time.sleep(0.2)
        headers = {"Authorization": f"Bearer {api_key}"}
        body = {"name": "meter-9", "type": "meter", "public_key": key.public_key.hex()}
        assert httpx.post(f"{url}/v1/devices", json=body, headers=headers).status_code == 201

        device = DeviceSide(broker.url, [key.did])
        one, two = reading(key, 1), reading(key, 2)
        device.publish(key.did, encode_request([one, two]), b"first")
        device.publish(key.did, encode_request([two]), b"again")  # a redelivery
        acks = {corr: ack for _topic, corr, ack in (device.next_ack(30), device.next_ack(30))}
        first = acks[b"first"]["results"]
        assert [r["status"] for r in first] == ["accepted", "accepted"]
        assert acks[b"again"]["results"][0]["reason"] == "replay"
        assert acks[b"again"]["results"][0]["index"] == first[1]["index"]

        bundle = httpx.get(f"{url}/v1/readings/{first[1]['id']}/proof", timeout=30).json()
        verify_bundle(bundle_from_json(bundle))
    finally:
        if device is not None:
            device.close()
        serve.terminate()
        serve.wait(timeout=60)
        log.close()
    store = PostgresStore(postgres_url)
    try:
        assert sorted(r.signed.reading.seq for r in store.iter_readings()) == [1, 2]
    finally:
        store.close()
