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
import sys
import tempfile
from pathlib import Path
from urllib.parse import quote

import psycopg
from ingest import register_devices, run_modes, start_server  # bench/ingest.py, beside this

from veriot.storage.testing import drop_schema, find_test_postgres, fresh_schema_name


def measure(db: str | None, requests: int, threads: int) -> tuple[float, float]:
    data = Path(tempfile.mkdtemp(prefix="veriot-bench-backend-"))
    proc, url, api_key = start_server(data, *(["--db", db] if db else []))
    try:
        keys = register_devices(url, api_key)
        (secs, ok, *_), (secs2, ok2, *_) = run_modes(url, keys, requests, threads)
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
