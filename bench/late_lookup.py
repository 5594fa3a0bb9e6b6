"""Store lookups of late readings against decoding the segments that hold them, measured
in the same run.

    .venv/bin/python bench/late_lookup.py [--segments N] [--postgres DSN]

A reading whose seq is below its device's highest logged one (sent after a later one:
concurrent senders of one device, an agent's backlog beside live readings) may be a
replay, so the sequencer asks the store whether the device's seq is logged
(`ReadingStore.find_seqs`, once per device per submission). The store here holds
`--segments` segments of 100 readings for each of 20 devices, taking turns; the late seqs
are among each device's last 300.

Printed per backend: microseconds per seq of a lookup of one seq and of 50 seqs at once,
beside the baseline: the same readings read each by its log index (`get_reading_at`: one
segment row, one reading decoded), and the ratio lookup / baseline.

On 2026-12-07 (2 cores, SQLite, 90 segments per device): a lookup decoded every reading
of the segments it probed, one seq at a time, 1,187 us per seq. Reading the seqs from the
bodies and decoding only the readings asked for, once per device: 183 us for one seq and
76 us each for 50, beside 116 and 109 us by index. Decoding only the readings taken
also halved the read by index (235 us before: every signature and leaf prefix of the
segment was built), which every read of one reading (a proof, a reading by id) makes.
PostgreSQL in the same run: 547 us for one seq, 86 us each for 50, 533 us by index.

PostgreSQL uses $VERIOT_TEST_POSTGRES or database `test` on 127.0.0.1:5432, in a
throw-away schema; it is skipped with a note when unreachable.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from veriot.ports import Store
from veriot.storage.sqlite import SqliteStore
from veriot.storage.testing import (
    drop_schema,
    find_test_postgres,
    fresh_schema_name,
    make_device,
    make_mixed_batch,
    make_segment,
)

DEVICES = 20
SEGMENT = 100
ROUNDS = 200


def fill(store: Store, segments: int) -> list[str]:
    """Registers the devices and appends `segments` segments of each, taking turns."""
    dids = []
    for n in range(DEVICES):
        device = make_device(n)
        store.add_device(device)
        dids.append(device.did)
    index = 0
    for i in range(segments):
        batch = []
        for did in dids:
            batch.append(make_segment(did, i * SEGMENT, index, SEGMENT))
            index += SEGMENT
        store.append(make_mixed_batch(batch))
    return dids


def per_seq(lookups: list[tuple[str, list[int]]], look: Callable[[str, list[int]], int]) -> float:
    """Microseconds per seq of `look` over `lookups`; `look` returns how many it found."""
    start = time.perf_counter()
    found = sum(look(did, seqs) for did, seqs in lookups)
    elapsed = time.perf_counter() - start
    wanted = sum(len(set(seqs)) for _, seqs in lookups)
    if found != wanted:
        raise SystemExit(f"found {found} of {wanted} logged seqs")
    return elapsed / wanted * 1e6


def by_index(store: Store, dids: list[str]) -> Callable[[str, list[int]], int]:
    """The baseline: each of the same readings read by its log index (one row, one
    reading decoded: the cheapest read of a stored reading)."""
    number = {did: n for n, did in enumerate(dids)}

    def look(did: str, seqs: list[int]) -> int:
        found = 0
        for seq in set(seqs):
            segment, offset = divmod(seq, SEGMENT)
            index = (segment * DEVICES + number[did]) * SEGMENT + offset
            found += store.get_reading_at(index) is not None
        return found

    return look


def run(name: str, store: Store, segments: int) -> None:
    dids = fill(store, segments)
    rng = random.Random(7)
    last = segments * SEGMENT - 1

    def late(count: int) -> list[tuple[str, list[int]]]:
        rounds = ROUNDS if count == 1 else ROUNDS // 10
        return [
            (rng.choice(dids), [last - rng.randrange(300) for _ in range(count)])
            for _ in range(rounds)
        ]

    def lookup(did: str, seqs: list[int]) -> int:
        return len(store.find_seqs(did, seqs))

    for count in (1, 50):
        asked = late(count)
        per_seq(asked[:5], lookup)  # warm the caches
        ours = per_seq(asked, lookup)
        base = per_seq(asked, by_index(store, dids))
        print(
            f"{name:10} {count:2} late seqs per lookup: {ours:8.1f} us per seq;"
            f" reading each by its index {base:8.1f} us; lookup / by index {ours / base:4.2f}"
        )


def on_both_backends(
    description: str, run: Callable[[str, Store, int], None], segments: int
) -> None:
    """Parses the command line (`--segments`, default `segments`; `--postgres`) and calls
    `run(name, store, segments)` on a fresh SQLite store and on a fresh PostgreSQL
    schema (skipped with a note when no server answers)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--segments", type=int, default=segments, help="segments per device")
    parser.add_argument("--postgres", help="PostgreSQL DSN (default: find the test one)")
    args = parser.parse_args()
    print(f"{DEVICES} devices, {args.segments} segments of {SEGMENT} readings each")
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteStore(Path(tmp) / "v.db")
        try:
            run("sqlite", store, args.segments)
        finally:
            store.close()
    dsn, why = (args.postgres, "") if args.postgres else find_test_postgres()
    if dsn is None:
        print(f"postgres   skipped: {why}")
        return
    from veriot.storage.postgres import PostgresStore

    schema = fresh_schema_name()
    pg = PostgresStore(dsn, schema=schema)
    try:
        run("postgres", pg, args.segments)
    finally:
        pg.close()
        drop_schema(dsn, schema)


def main() -> None:
    on_both_backends(__doc__.split("\n")[0], run, 90)


if __name__ == "__main__":
    main()
