"""Append throughput of the SQLite and PostgreSQL stores against a bare insert of the same
readings, measured in the same run.

    .venv/bin/python bench/store.py [--batches N] [--batch-size N] [--postgres DSN]

Each batch is what the sequencer appends after a busy moment: `--batch-size` readings of
10 devices, 3 records each, with the ~2 tree nodes per reading that they complete. Two
shapes are timed:

- `interleaved`: the devices' readings take turns, so every reading is a segment of its
  own (the worst case: single readings from many devices at once);
- `runs`: each device's readings sit at consecutive indices and arrive as one segment, as
  after requests of many readings from one device (what `veriot serve` sees from fleets
  that send batches).

Baseline: the readings' canonical messages inserted into a one-column table with the
backend's cheapest bulk path (SQLite executemany; PostgreSQL COPY), committed per batch
with the same durability settings. Printed per backend and shape: readings/s of the store
and of the baseline over all their batches (so that work done once in many batches, such
as a WAL checkpoint, counts), the median and the slowest batch in milliseconds, and the
ratio store/baseline (1.0 would mean the store's indexes, tree tiles and row building
cost nothing). For SQLite, on Linux, also the bytes written per reading by each (write
calls of this process: the WAL, and the checkpoints that copy it into the database
file), where every page a commit touches is written whole.

On 2026-12-07 (2 cores, 40 batches of 1,000, three alternating runs against the store
of that morning), when ids stopped taking a row each (`recent_ids` and `id_chunks`, see
docs/log.md): SQLite `runs` went from 69,033-72,511 to 84,588-98,979 readings/s (store /
baseline 0.35-0.43 to 0.55-0.58; median batch 11.6-12.5 ms to 8.4-10.6 ms; 1,188 to 897
bytes written per reading); PostgreSQL `runs` from 38,686-54,736 to 65,181-73,418
(0.27-0.32 to 0.40-0.47). `interleaved` moved within the noise (SQLite 24,156-25,861 to
24,000-33,357; PostgreSQL 18,923-21,220 to 20,597-24,051): its batches are mostly
segment rows. Counted in instructions (callgrind, SqlStore.append, 25 batches of 8
segments of 100 readings), the append went from 25,400 to 17,900 per reading, the
sealing of each complete epoch (about 1,750 per id) included.

PostgreSQL uses $VERIOT_TEST_POSTGRES or database `test` on 127.0.0.1:5432, in a
throw-away schema; it is skipped with a note when unreachable.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from veriot.ports import AppendBatch, Store
from veriot.storage.sqlite import SqliteStore
from veriot.storage.sqlite.pool import connect
from veriot.storage.testing import (
    drop_schema,
    find_test_postgres,
    fresh_schema_name,
    make_device,
    make_mixed_batch,
    make_segment,
)

DEVICES = 10


SHAPES = ("interleaved", "runs")


def build_batches(batches: int, size: int, shape: str) -> list[AppendBatch]:
    """Batches continuing one log from index 0 (built before any timing), in `shape`."""
    dids = [make_device(n).did for n in range(DEVICES)]
    per_device = size // DEVICES
    if shape == "interleaved":  # one-reading segments, as the sequencer makes them
        return [
            make_mixed_batch(
                segments=[
                    make_segment(dids[i % DEVICES], k * per_device + i // DEVICES, k * size + i, 1)
                    for i in range(size)
                ]
            )
            for k in range(batches)
        ]
    return [
        make_mixed_batch(
            segments=[
                make_segment(did, k * per_device, k * size + d * per_device, per_device)
                for d, did in enumerate(dids)
            ]
        )
        for k in range(batches)
    ]


def batch_messages(batch: AppendBatch) -> list[bytes]:
    """The canonical messages of a batch's readings, in log order."""
    return [message for segment in batch.segments for message in segment.messages]


def time_batches(run: Callable[[AppendBatch], None], batches: list[AppendBatch]) -> list[float]:
    """Seconds per batch."""
    out = []
    for batch in batches:
        start = time.perf_counter()
        run(batch)
        out.append(time.perf_counter() - start)
    return out


def time_store(store: Store, batches: list[AppendBatch]) -> list[float]:
    for n in range(DEVICES):
        store.add_device(make_device(n))
    return time_batches(store.append, batches)


def sqlite_baseline(folder: Path, batches: list[AppendBatch]) -> list[float]:
    conn = connect(folder / "baseline.db")  # WAL, synchronous=FULL, as the store
    conn.execute("CREATE TABLE bare (message BLOB)")

    def run(batch: AppendBatch) -> None:
        rows = [(m,) for m in batch_messages(batch)]
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT INTO bare VALUES (?)", rows)
        conn.execute("COMMIT")

    try:
        return time_batches(run, batches)
    finally:
        conn.close()


def postgres_baseline(dsn: str, schema: str, batches: list[AppendBatch]) -> list[float]:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE TABLE "{schema}".bare (message BYTEA)')

        def run(batch: AppendBatch) -> None:
            rows = [(m,) for m in batch_messages(batch)]
            with conn.transaction(), conn.cursor() as cur:
                copy_sql = f'COPY "{schema}".bare (message) FROM STDIN (FORMAT BINARY)'
                with cur.copy(copy_sql) as copy:
                    copy.set_types(["bytea"])
                    for row in rows:
                        copy.write_row(row)

        return time_batches(run, batches)


def written_bytes() -> int | None:
    """Bytes this process has passed to write calls (Linux /proc/self/io), or None."""
    try:
        with open("/proc/self/io") as io:
            for line in io:
                if line.startswith("wchar:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def report(
    name: str,
    size: int,
    store_s: list[float],
    base_s: list[float],
    written: tuple[float, float] | None = None,
) -> None:
    store_rate = size * len(store_s) / sum(store_s)
    base_rate = size * len(base_s) / sum(base_s)
    print(
        f"{name:<22} store {store_rate:>9,.0f} readings/s "
        f"(ms per batch: median {statistics.median(store_s) * 1e3:.2f}, "
        f"slowest {max(store_s) * 1e3:.2f})"
        f" | baseline {base_rate:>9,.0f} readings/s "
        f"(median {statistics.median(base_s) * 1e3:.2f} ms)"
        f" | store/baseline throughput {store_rate / base_rate:.2f}"
    )
    if written is not None:
        print(
            f"{'':<22} written per reading: store {written[0]:,.0f} B, "
            f"baseline {written[1]:,.0f} B ({written[0] / written[1]:.1f}x)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--postgres", help="DSN (default: the test database)")
    args = parser.parse_args()
    size = args.batch_size - args.batch_size % DEVICES
    shaped = {shape: build_batches(args.batches, size, shape) for shape in SHAPES}
    print(f"{args.batches} batches of {size} readings (3 records each) and their tree nodes")

    readings = args.batches * size
    for shape, batches in shaped.items():
        with tempfile.TemporaryDirectory() as folder:
            store = SqliteStore(Path(folder) / "veriot.db")
            start = written_bytes()
            try:
                store_s = time_store(store, batches)
            finally:
                store.close()
            middle = written_bytes()
            base_s = sqlite_baseline(Path(folder), batches)
            end = written_bytes()
            written = None
            if start is not None and middle is not None and end is not None:
                written = ((middle - start) / readings, (end - middle) / readings)
            report(f"sqlite {shape}", size, store_s, base_s, written)

    dsn = args.postgres
    if dsn is None:
        dsn, why = find_test_postgres()
        if dsn is None:
            print(f"postgres   skipped: {why}")
            return
    from veriot.storage.postgres import PostgresStore

    for shape, batches in shaped.items():
        schema = fresh_schema_name()
        pg = PostgresStore(dsn, schema=schema)
        try:
            store_s = time_store(pg, batches)
            base_s = postgres_baseline(dsn, schema, batches)
        finally:
            pg.close()
            drop_schema(dsn, schema)
        report(f"postgres {shape}", size, store_s, base_s)


if __name__ == "__main__":
    main()
