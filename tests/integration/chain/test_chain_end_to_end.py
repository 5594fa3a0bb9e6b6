"""The chain as a user meets it: a service registers devices and anchors its log on chain,
and a third party checks a proof bundle against the chain with the real CLI."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import uvicorn

from tests.conftest import LiveService, free_port, start_service
from tests.integration.chain.conftest import Anvil
from veriot.core.types import Record
from veriot.core.wire import encode_reading
from veriot.device import DeviceKey, sign_reading

VERIOT = [sys.executable, "-m", "veriot.cli.main"]


def veriot(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*VERIOT, *map(str, args)], capture_output=True, text=True, timeout=120)


def send(service: LiveService, key: DeviceKey, seqs: range) -> list[str]:
    now = time.time()
    body = {
        "readings": [
            encode_reading(sign_reading(key, s, (Record("temperature", 4.0 + s / 10, now, "Cel"),)))
            for s in seqs
        ]
    }
    with service.client() as c:
        r = c.post("/v1/readings", json=body)
    assert r.status_code in (200, 403), r.text
    return [x.get("id", "") for x in r.json()["results"] if x["status"] == "accepted"]


def register(service: LiveService, key: DeviceKey) -> None:
    with service.client(operator=True) as c:
        r = c.post(
            "/v1/devices",
            json={"name": "reefer", "type": "cold-chain", "public_key": key.public_key.hex()},
        )
    assert r.status_code == 201, r.text


def anchored_bundle(service: LiveService, reading_id: str, tmp: Path) -> Path:
    """Waits until the reading's checkpoint is anchored, then writes its bundle."""
    deadline = time.monotonic() + 60
    with service.client() as c:
        while True:
            bundle = c.get(f"/v1/readings/{reading_id}/proof").json()
            if bundle.get("anchor"):
                break
            assert time.monotonic() < deadline, "no anchor within 60 s"
            time.sleep(0.2)
    path = tmp / f"bundle-{reading_id[:8]}.json"
    path.write_text(json.dumps(bundle))
    return path


def stop(server: uvicorn.Server, thread: threading.Thread) -> None:
    server.should_exit = True
    thread.join(timeout=30)


def test_bundle_verifies_against_the_embedded_chain_served_to_a_third_party(tmp_path: Path) -> None:
    data = tmp_path / "data"
    service, server, thread = start_service(data, anchor_interval_s=0.2)
    key = DeviceKey.generate()
    try:
        register(service, key)
        ids = send(service, key, range(1, 6))
        bundle = anchored_bundle(service, ids[2], tmp_path)
        with service.client() as c:
            anchors = c.get("/v1/anchors").json()["items"]
        assert anchors and {"tx_hash", "block", "size"} <= set(anchors[0])
    finally:
        stop(server, thread)

    port = free_port()
    chain_rpc = subprocess.Popen(
        [*VERIOT, "chain", "serve", "--data", str(data), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert chain_rpc.stdout is not None
        url = json.loads(chain_rpc.stdout.readline())["url"]
        # the third party has only the bundle and the chain: no data directory
        away = tmp_path / "elsewhere"
        away.mkdir()
        copy = away / "bundle.json"
        shutil.copy(bundle, copy)
        ok = veriot("verify-proof", copy, "--chain", url)
        assert ok.returncode == 0, ok.stderr
        assert "anchored on chain" in ok.stdout

        forged = json.loads(copy.read_text())
        forged["anchor"]["root"] = "00" * 32
        copy.write_text(json.dumps(forged))
        bad = veriot("verify-proof", copy, "--chain", url)
        assert bad.returncode == 1 and "INVALID" in bad.stderr
    finally:
        chain_rpc.terminate()
        chain_rpc.wait(timeout=10)
        if chain_rpc.stdout is not None:
            chain_rpc.stdout.close()

    audit = veriot("verify", "--data", data)
    assert audit.returncode == 0, audit.stdout + audit.stderr
    assert "anchored roots verified" in audit.stdout and " 0 anchored" not in audit.stdout


def test_rewritten_history_is_caught_by_the_anchors(tmp_path: Path) -> None:
    """An operator who rewrites the whole log (readings, nodes, re-signed checkpoints, all
    consistent) cannot rewrite what the chain witnessed."""
    data = tmp_path / "data"
    service, server, thread = start_service(data, anchor_interval_s=0.2)
    key = DeviceKey.generate()
    try:
        register(service, key)
        ids = send(service, key, range(1, 9))
        anchored_bundle(service, ids[-1], tmp_path)
    finally:
        stop(server, thread)

    forged_dir = tmp_path / "forged"
    forged_dir.mkdir()
    shutil.copy(data / "log.key", forged_dir / "log.key")
    forger, fserver, fthread = start_service(forged_dir, use_chain=False)
    try:
        register(forger, key)
        send(forger, key, range(101, 109))  # a different history of the same size
        forger.node.sequencer.checkpoint_now().result()  # type: ignore[attr-defined]
    finally:
        stop(fserver, fthread)
    for suffix in ("", "-wal", "-shm"):
        target = data / f"veriot.db{suffix}"
        target.unlink(missing_ok=True)
        source = forged_dir / f"veriot.db{suffix}"
        if source.exists():
            shutil.copy(source, target)
    assert veriot("verify", "--data", data, "--no-chain").returncode == 0  # the log alone
    audit = veriot("verify", "--data", data)
    assert audit.returncode == 1
    assert "anchor_mismatch" in audit.stdout


def test_service_on_anvil_registers_anchors_and_refuses_after_revocation(
    tmp_path: Path, anvil: Anvil, anvil_key: Path
) -> None:
    data = tmp_path / "data"
    service, server, thread = start_service(
        data, chain=anvil.url, chain_key=anvil_key, anchor_interval_s=0.3
    )
    key = DeviceKey.generate()
    try:
        register(service, key)
        ids = send(service, key, range(1, 4))
        bundle = anchored_bundle(service, ids[0], tmp_path)
        ok = veriot("verify-proof", bundle, "--chain", anvil.url)
        assert ok.returncode == 0, ok.stderr
        with service.client(operator=True) as c:
            assert c.post(f"/v1/devices/{key.did}/revoke").json()["status"] == "revoked"
        assert send(service, key, range(4, 5)) == []
    finally:
        stop(server, thread)
    # a reading made while the device was in good standing stays provable after revocation
    still = veriot("verify-proof", bundle, "--chain", anvil.url)
    assert still.returncode == 0, still.stderr
