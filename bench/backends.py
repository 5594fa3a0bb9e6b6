"""PostgreSQL-backed against SQLite-backed HTTP ingest, in the same run.

Starts `veriot serve` twice, on SQLite (the baseline) and on PostgreSQL (a schema of its
own in the test database: $VERIOT_TEST_POSTGRES or postgresql://postgres@127.0.0.1/test),
and drives both with the same kind of load as bench/ingest.py: requests of 100 readings
with per-reading signatures, then with one signature per 100-reading batch. Prints
readings/s for each and the PostgreSQL/SQLite ratio. Usage: python bench/backends.py
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import httpx
import psycopg
from ingest import drive, make_bodies  # bench/ingest.py, next to this file

from veriot.device import DeviceKey
from veriot.storage.testing import drop_schema, find_test_postgres, fresh_schema_name


def serve(data: Path, db: str | None) -> tuple[subprocess.Popen[bytes], str, str]:
    veriot = [sys.executable, "-m", "veriot.cli.main"]
    store = ["--db", db] if db else []
    key = subprocess.run(
        [*veriot, "apikey", "create", "--data", str(data), *store],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [*veriot, "serve", "--data", str(data), "--port", str(port), *store],
        stdout=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            httpx.get(url + "/healthz", timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.1)
    return proc, url, key


def measure(db: str | None, requests: int, threads: int) -> tuple[float, float]:
    data = Path(tempfile.mkdtemp(prefix="veriot-bench-backend-"))
    proc, url, api_key = serve(data, db)
    try:
        keys = [DeviceKey.generate() for _ in range(20)]
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {api_key}"}) as c:
            for k in keys:
                c.post(
                    "/v1/devices", json={"name": k.did[-8:], "public_key": k.public_key.hex()}
                ).raise_for_status()
        per_reading = make_bodies(keys, requests, per_batch=False, seq0=1)
        per_batch = make_bodies(keys, requests * 4, per_batch=True, seq0=10_000_000)
        drive(url, per_reading[:10], threads)  # warm-up
        secs, ok, _ = drive(url, per_reading[10:], threads)
        secs2, ok2, _ = drive(url, per_batch, threads)
        return ok / secs, ok2 / secs2
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(data, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=200, help="100-reading requests per mode")
    parser.add_argument("--threads", type=int, default=6)
    args = parser.parse_args()
    dsn, why = find_test_postgres()
    if dsn is None:
        sys.exit(f"PostgreSQL is not available: {why}")
    schema = fresh_schema_name()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in dsn else "?"
    pg_url = f"{dsn}{sep}options={quote(f'-csearch_path={schema}')}"
    try:
        lite = measure(None, args.requests, args.threads)
        pg = measure(pg_url, args.requests, args.threads)
    finally:
        drop_schema(dsn, schema)
    print(f"cores: {len(os.sched_getaffinity(0))}")
    for name, i in (("per-reading signatures", 0), ("per-batch signatures", 1)):
        print(
            f"{name:24s}: SQLite {lite[i]:10,.0f} readings/s (baseline)   "
            f"PostgreSQL {pg[i]:10,.0f} readings/s   = {pg[i] / lite[i]:.2f} x SQLite"
        )


if __name__ == "__main__":
    main()
