"""Store lookups of readings by id against reads of the same readings by log index,
measured in the same run.

    .venv/bin/python bench/id_lookup.py [--segments N] [--postgres DSN]

A reading's id is the SHA-256 of its message: what `GET /v1/readings/{id}/proof` and
`veriot proof ID` are given. The store here holds `--segments` segments of 100 readings
for each of 20 devices, taking turns (bench/late_lookup.py fills it), so the log spans
`--segments * 2000 / 16384` complete id epochs and one being written. Timed, per backend:

- ids of readings anywhere in the log (almost all in complete epochs: `id_chunks`);
- ids of readings of the epoch being written (`recent_ids`);
- ids that no reading has (every place probed, nothing found);
- the baseline: each of the first two sets' readings read by its log index
  (`get_reading_at`: one segment row, one reading decoded).

Printed: microseconds per lookup of each, and the ratio of each to the baseline.

On 2026-12-07 (2 cores), against the store before id_chunks, when every id had a
`reading_ids` row and a lookup probed each epoch's B-tree (ratios to reads by index in
the same run, two alternating runs each):
- 500,000 readings (30 epochs), SQLite: found 2.29-2.34x (before 1.94-2.33x), not found
  1.33-1.52x (before 0.74-0.84x); PostgreSQL: found 2.94-4.14x (before 2.32-3.61x), not
  found 2.32-2.37x (before 1.55-1.69x). A lookup now fetches one row per epoch, and the
  rows of the epoch being written, where before it probed one B-tree per epoch.
- 2,000,000 readings (122 epochs), SQLite, one run each: found 817 us, 4.6x (before
  1,216 us, 9.0x), not found 536 us (before 709 us).
So lookups cost somewhat more in small logs and grow more slowly with the log; appends,
which every reading makes, went 1.2 to 1.5 times as fast (bench/store.py).

Later that day SQLite's id_chunks moved to (epoch, bucket) order (migration 5): a seal
then appends its rows, where it rewrote pages all over the table, which slowed ingest as
the log grew (bench/ingest.py). A lookup probes its bucket's row of each epoch by key
instead of reading one range, and costs more: at 500,000 readings, two alternating runs,
found 186-198 us against 134-146 (ratio 3.9-4.0x against 3.1-3.3x), not found 116-121
us against 84-86.

PostgreSQL uses $VERIOT_TEST_POSTGRES or database `test` on 127.0.0.1:5432, in a
throw-away schema; it is skipped with a note when unreachable.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

from late_lookup import fill, on_both_backends  # bench/late_lookup.py, beside this

from veriot.ports import Store
from veriot.storage.codec import ID_EPOCH_BITS

ROUNDS = 300
K = TypeVar("K")


def timed(keys: Sequence[K], look: Callable[[K], bool], present: bool = True) -> float:
    """Microseconds per call of `look` (which says whether it found a reading) over
    `keys`, every one of which names a reading when `present`, none otherwise."""
    start = time.perf_counter()
    found = sum(look(key) for key in keys)
    elapsed = time.perf_counter() - start
    if found != (len(keys) if present else 0):
        raise SystemExit(f"found {found} readings for {len(keys)} keys")
    return elapsed / len(keys) * 1e6


def run(name: str, store: Store, segments: int) -> None:
    fill(store, segments)
    size = store.log_size()
    open_epoch = (size >> ID_EPOCH_BITS) << ID_EPOCH_BITS
    rng = random.Random(11)
    anywhere = [rng.randrange(size) for _ in range(ROUNDS)]
    recent = [rng.randrange(open_epoch, size) for _ in range(ROUNDS)] if open_epoch < size else []

    def ids_of(indices: list[int]) -> list[str]:
        out = []
        for index in indices:
            stored = store.get_reading_at(index)
            assert stored is not None
            out.append(stored.id)
        return out

    def by_id(reading_id: str) -> bool:
        return store.get_reading(reading_id) is not None

    def by_index(index: int) -> bool:
        return store.get_reading_at(index) is not None

    timed(ids_of(anywhere[:10]), by_id)  # warm the caches
    print(
        f"{name:10} {size:,} readings, {size >> ID_EPOCH_BITS} complete id epochs,"
        f" {size - open_epoch:,} readings in the one being written"
    )
    for what, indices in (("anywhere in the log", anywhere), ("of the open epoch", recent)):
        if not indices:
            continue
        ours = timed(ids_of(indices), by_id)
        base = timed(indices, by_index)
        print(
            f"{name:10} by id, {what:20} {ours:8.1f} us per lookup;"
            f" by index {base:8.1f} us; by id / by index {ours / base:4.2f}"
        )
    missing = [hashlib.sha256(b"no reading %d" % i).hexdigest() for i in range(ROUNDS)]
    ours = timed(missing, by_id, present=False)
    base = timed(anywhere, by_index)
    print(
        f"{name:10} by id, {'no such reading':20} {ours:8.1f} us per lookup;"
        f" by index {base:8.1f} us; by id / by index {ours / base:4.2f}"
    )


def main() -> None:
    on_both_backends(__doc__.split("\n")[0], run, 250)


if __name__ == "__main__":
    main()
