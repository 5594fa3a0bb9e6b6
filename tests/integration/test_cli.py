"""The real `veriot` command, run as a user runs it."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import httpx

from tests.conftest import LiveService

VERIOT = [sys.executable, "-m", "veriot.cli.main"]


def veriot(
    *args: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*VERIOT, *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def test_device_lifecycle_sign_ingest_proof_and_verify(
    tmp_path: Path, service: LiveService
) -> None:
    data = service.data_dir
    key = tmp_path / "truck.key"
    made = veriot(
        "device", "create", "truck-7", "--type", "cold-chain", "--key", key, "--data", data
    )
    assert made.returncode == 0, made.stderr
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    did = json.loads(key.read_text())["did"]
    assert did.startswith("did:key:z6Mk") and did in made.stdout

    listed = veriot("device", "list", "--data", data)
    assert did in listed.stdout and "active" in listed.stdout

    signed = veriot("device", "sign", "--key", key, "--seq", "1", "temperature=4.5:Cel", "door=0")
    assert signed.returncode == 0, signed.stderr
    body = {"readings": [json.loads(signed.stdout)]}
    with service.client() as c:
        result = c.post("/v1/readings", json=body).json()["results"][0]
    assert result["status"] == "accepted", result

    bundle = tmp_path / "bundle.json"
    proof = veriot("proof", result["id"], "--url", service.url)
    assert proof.returncode == 0, proof.stderr
    bundle.write_text(proof.stdout)
    ok = veriot("verify-proof", bundle)
    assert ok.returncode == 0 and "VALID" in ok.stdout

    doc = json.loads(bundle.read_text())
    doc["checkpoint"]["size"] += 1
    bundle.write_text(json.dumps(doc))
    bad = veriot("verify-proof", bundle)
    assert bad.returncode == 1 and "INVALID" in bad.stderr

    revoked = veriot("device", "revoke", did, "--url", service.url, "--api-key", service.api_key)
    assert revoked.returncode == 0 and "revoked" in revoked.stdout
    again = veriot("device", "sign", "--key", key, "--seq", "2", "temperature=4.6:Cel")
    with service.client() as c:
        refused = c.post("/v1/readings", json={"readings": [json.loads(again.stdout)]})
    assert refused.status_code == 403


def test_cli_bad_input_gives_message_and_nonzero_exit(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.json"
    garbage.write_text("{not json")
    r = veriot("verify-proof", garbage)
    assert r.returncode != 0 and "not JSON" in r.stderr
    r = veriot("verify-proof", tmp_path / "missing.json")
    assert r.returncode != 0 and "cannot read" in r.stderr
    wrong_shape = tmp_path / "shape.json"
    wrong_shape.write_text(json.dumps({"hello": "world"}))
    r = veriot("verify-proof", wrong_shape)
    assert r.returncode == 1 and r.stderr.strip()
    key = tmp_path / "k.key"
    assert veriot("device", "create", "k", "--key", key, "--data", tmp_path / "d").returncode == 0
    r = veriot("device", "sign", "--key", key, "--seq", "1", "temperature=warm")
    assert r.returncode != 0 and "temperature" in r.stderr
    r = veriot("device", "create", "k", "--key", key, "--data", tmp_path / "d")
    assert r.returncode != 0 and "already exists" in r.stderr
    r = veriot("device", "revoke", "did:key:nonsense", "--data", tmp_path / "d")
    assert r.returncode != 0 and "did" in r.stderr.lower()
    r = veriot("simulate", "--url", "http://127.0.0.1:9", "--devices", "1", "--api-key", "x")
    assert r.returncode != 0 and "cannot reach" in r.stderr


def ingest_eight_readings(service: LiveService) -> str:
    """Registers a device, stores its readings with seqs 1-8 (indices 0-7) under a signed
    checkpoint, checks that `veriot verify` passes, and returns the device's did."""
    from veriot.core.types import Record
    from veriot.core.wire import encode_reading
    from veriot.device import DeviceKey, sign_reading

    key = DeviceKey.generate()
    with service.client(operator=True) as c:
        c.post("/v1/devices", json={"name": "m", "public_key": key.public_key.hex()})
        body = {
            "readings": [
                encode_reading(sign_reading(key, i, (Record("power", 100.0 + i, 1.7e9 + i, "W"),)))
                for i in range(1, 9)
            ]
        }
        assert c.post("/v1/readings", json=body).json()["accepted"] == 8
    service.node.sequencer.checkpoint_now().result()  # type: ignore[attr-defined]
    clean = veriot("verify", "--data", service.data_dir)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    return key.did


def test_verify_reports_tampering_behind_veriots_back(tmp_path: Path, service: LiveService) -> None:
    from dataclasses import replace

    from veriot.core.types import StoredReading
    from veriot.storage.testing import tamper_sqlite_readings

    ingest_eight_readings(service)
    data = service.data_dir

    def tamper(readings: dict[int, StoredReading]) -> None:
        del readings[3]
        edited = bytearray(readings[5].message or b"")
        edited[-12] ^= 0x01  # a bit of the record's value
        readings[5] = replace(readings[5], message=bytes(edited))
        readings[1], readings[2] = (
            replace(readings[2], index=1),
            replace(readings[1], index=2),
        )
        readings[40] = replace(readings[6], index=40)

    tamper_sqlite_readings(data / "veriot.db", tamper)
    tampered = veriot("verify", "--data", data)
    assert tampered.returncode == 1, tampered.stdout
    lines = tampered.stdout.splitlines()
    assert any(line.startswith("deleted") and "3" in line for line in lines), lines
    assert any(line.startswith("edited") and "5" in line for line in lines), lines
    assert any(line.startswith("reordered") for line in lines), lines
    assert any(line.startswith("inserted") and "40" in line for line in lines), lines


def test_verify_reports_index_entries_changed_behind_veriots_back(
    tmp_path: Path, service: LiveService
) -> None:
    import sqlite3

    did = ingest_eight_readings(service)
    data = service.data_dir
    # The readings and the tree stay as they were: only what finds them changes. A lower
    # seq range would let a replay of seqs 4-8 in once the service restarts; a missing
    # id entry makes a reading unfindable by its id (the ids of an epoch still being
    # written are kept per segment in recent_ids: this drops the last one's).
    db = sqlite3.connect(data / "veriot.db")
    with db:
        db.execute("UPDATE segments SET max_seq = 3")
        changed = db.execute(
            "UPDATE recent_ids SET id_keys = substr(id_keys, 1, length(id_keys) - 8)"
            " WHERE first_idx = 0"
        )
        assert changed.rowcount == 1
    db.close()
    tampered = veriot("verify", "--data", data)
    assert tampered.returncode == 1, tampered.stdout
    (line,) = tampered.stdout.splitlines()
    assert line.startswith("index_mismatch: segment of " + did), line
    assert "max_seq is 3, its readings say 8" in line
    assert "1 of its readings cannot be found by id" in line


def test_help_lists_every_command() -> None:
    r = veriot("--help")
    for command in (
        "device",
        "serve",
        "proof",
        "verify-proof",
        "verify",
        "apikey",
        "simulate",
        "demo",
    ):
        assert command in r.stdout


def test_demo_runs_end_to_end(tmp_path: Path) -> None:
    r = veriot(
        "demo", "--duration", "3", "--rate", "200", "--devices", "4", "--data", tmp_path / "demo"
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "readings accepted" in r.stdout and "VERIFIED" in r.stdout
    bundle = tmp_path / "demo" / "bundle.json"
    assert veriot("verify-proof", bundle).returncode == 0
    assert veriot("verify", "--data", tmp_path / "demo").returncode == 0


def test_serve_answers_healthz(tmp_path: Path) -> None:
    from tests.conftest import free_port

    port = free_port()
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen(
        [*VERIOT, "serve", "--data", str(tmp_path / "s"), "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        import time

        deadline = time.monotonic() + 60
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.HTTPError:
                alive = proc.poll() is None
                assert time.monotonic() < deadline and alive, (tmp_path / "serve.log").read_text()
                time.sleep(0.2)
        assert r.json()["status"] == "ok"
        assert (
            httpx.get(f"http://127.0.0.1:{port}/openapi.json").json()["info"]["title"] == "veriot"
        )
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
