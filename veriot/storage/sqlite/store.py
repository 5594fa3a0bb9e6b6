"""The SQLite Store, veriot's default: one file, WAL, every committed append durable.

Writers are serialised by a lock in the process (and by BEGIN IMMEDIATE across
processes); readers use their own pooled connections and see the last committed state.
"""

from __future__ import annotations

import functools
import itertools
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from veriot.core.errors import StoreError
from veriot.storage import tiles
from veriot.storage.migrations import check_newest, load_migrations
from veriot.storage.sql import TILES, SqlStore, Table
from veriot.storage.sqlite.pool import ConnectionPool

# One probe of the id index per epoch of log indices (see codec.ID_EPOCH_BITS).
_BY_ID = (
    "WITH RECURSIVE epochs (e) AS (SELECT 0 UNION ALL SELECT e + 1 FROM epochs"
    " WHERE e < (SELECT max(epoch) FROM reading_ids))"
    " SELECT r.idx FROM epochs JOIN reading_ids AS r ON r.epoch = epochs.e AND r.id_key = ?"
)
_IN_CHUNK = 500
_MAX_VARIABLES = 30_000
"""Bound parameters in one statement (SQLite allows 32,766 since 3.32)."""


@functools.lru_cache(maxsize=256)
def _multi_insert(table: Table, rows: int, tail: str) -> str:
    """INSERT into `table` from a VALUES list of `rows` rows, of which it keeps as many as
    its last parameter says (`LIMIT ?`), ending in `tail`. (The cache hands back the same
    str, whose hash is kept, so the connection's statement cache finds it without hashing
    its text again.)"""
    marks = "(" + ", ".join("?" * len(table.columns)) + ")"
    values = ", ".join([marks] * rows)
    columns = ", ".join(table.columns)
    return f"INSERT INTO {table.name} ({columns}) SELECT * FROM (VALUES {values}) LIMIT ?{tail}"


def _rows_per_statement(table: Table) -> int:
    """The largest power of two of rows whose values fit one statement with its LIMIT."""
    fits = max(1, (_MAX_VARIABLES - 1) // len(table.columns))
    return 1 << fits.bit_length() - 1


def _insert_rows(
    conn: sqlite3.Connection, table: Table, rows: Sequence[Sequence[Any]], tail: str = ""
) -> None:
    """Inserts `rows` into `table` with many rows per statement, each statement ending in
    `tail` (e.g. an ON CONFLICT clause).

    Many rows per statement rather than executemany: sqlite3 releases the GIL around each
    statement step, and in the service every release lets another thread in for up to a
    switch interval, so one step per row made appends wait on them.

    Each statement holds a power of two of rows, padded with zeros that `LIMIT ?` cuts
    off (exactly: the VALUES rows come in order, and never reach the table), so that a
    few statement texts serve every row count and stay in the connection's statement
    cache. With a text of its own for each count, almost every append parsed and
    compiled its statements again, thousands of parameters each. The padding is 0
    rather than NULL because sqlite3 binds an int directly but looks for an adapter for
    None."""
    per_statement = _rows_per_statement(table)
    width = len(table.columns)
    for start in range(0, len(rows), per_statement):
        chunk = rows[start : start + per_statement]
        n = len(chunk)
        size = 1 << (n - 1).bit_length()
        params: list[Any] = list(itertools.chain.from_iterable(chunk))
        params.extend(itertools.repeat(0, (size - n) * width))
        params.append(n)
        conn.execute(_multi_insert(table, size, tail), params)


def split_statements(script: str) -> Iterator[str]:
    """The SQL statements of a script, each complete (triggers included)."""
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            yield buffer.strip()
            buffer = ""
    if buffer.strip() and any(
        part.strip() and not part.strip().startswith("--") for part in buffer.splitlines()
    ):
        raise StoreError(f"migration ends in an incomplete statement: {buffer.strip()[:80]!r}")


def migrate(conn: sqlite3.Connection) -> list[int]:
    """Applies the pending migrations, each in its own transaction; returns their numbers.
    Raises StoreError when the database has a migration this code does not know."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)"
    )
    known = load_migrations("veriot.storage.sqlite")
    applied: list[int] = []
    for migration in known:
        conn.execute("BEGIN IMMEDIATE")
        try:
            done = conn.execute(
                "SELECT 1 FROM schema_migrations WHERE version = ?", (migration.version,)
            ).fetchone()
            if done is None:
                for statement in split_statements(migration.sql):
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_migrations VALUES (?, ?, ?)",
                    (migration.version, migration.name, time.time()),
                )
                applied.append(migration.version)
            conn.execute("COMMIT")
        except BaseException:
            conn.rollback()
            raise
    (newest,) = conn.execute("SELECT max(version) FROM schema_migrations").fetchone()
    check_newest(newest, len(known))
    return applied


class SqliteStore(SqlStore[sqlite3.Connection]):
    """The Store in one SQLite file at `path` (created, with its folder, when missing).

    Safe to share between threads: one writer at a time, any number of readers.
    """

    # Segments never overlap, so the one that starts last ends last.
    LOG_SIZE_SQL = (
        "SELECT max(coalesce((SELECT first_idx + count FROM segments"
        " ORDER BY first_idx DESC LIMIT 1), 0), coalesce((SELECT max(idx) FROM alerts), -1) + 1)"
    )
    BY_ID_SQL = _BY_ID
    NAME_MATCH_SQL = "instr(names, ?) > 0"
    # id_chunks is kept in (epoch, bucket) order (migration 5): one key per epoch.
    CHUNKS_OF_BUCKET_SQL = (
        "WITH RECURSIVE epochs(epoch) AS (SELECT min(epoch) FROM id_chunks UNION ALL"
        " SELECT epoch + 1 FROM epochs WHERE epoch < (SELECT max(epoch) FROM id_chunks))"
        " SELECT c.epoch, c.id_keys, c.offsets FROM epochs JOIN id_chunks AS c"
        " ON c.epoch = epochs.epoch WHERE c.bucket = ?"
    )
    KEY_MATCH_SQL = ""
    LEGACY_READINGS_SQL = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'readings'"
    UNIQUE_VIOLATION = sqlite3.IntegrityError

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the folder of {path}: {exc}") from exc
        self._pool = ConnectionPool(path)
        self._write_lock = threading.Lock()
        with self._connection("migrate") as conn:
            applied = migrate(conn)
        self._opened(applied)

    @contextmanager
    def _connection(self, what: str) -> Iterator[sqlite3.Connection]:
        with self._pool.connection() as conn:
            try:
                yield conn
            except sqlite3.Error as exc:
                raise StoreError(f"{what} failed in {self.path}: {exc}") from exc

    @contextmanager
    def _snapshot(self, what: str) -> Iterator[sqlite3.Connection]:
        with self._connection(what) as conn:
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                conn.execute("COMMIT")

    @contextmanager
    def _write(self, what: str, *, log: bool = False) -> Iterator[sqlite3.Connection]:
        # One writer at a time in this process, and BEGIN IMMEDIATE takes the database's
        # write lock, so every write transaction already keeps the log to itself.
        with self._write_lock, self._connection(what) as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.rollback()
                raise
            conn.execute("COMMIT")

    def _execute(
        self, conn: sqlite3.Connection, sql: str, params: Sequence[Any] = ()
    ) -> sqlite3.Cursor:
        return conn.execute(sql, params)

    def _executemany(
        self, conn: sqlite3.Connection, sql: str, rows: Sequence[Sequence[Any]]
    ) -> None:
        conn.executemany(sql, rows)

    def _bulk_insert(
        self, conn: sqlite3.Connection, table: Table, rows: Sequence[Sequence[Any]]
    ) -> None:
        _insert_rows(conn, table, rows)

    def _store_tiles(
        self,
        conn: sqlite3.Connection,
        inserts: list[tuple[int, bytes]],
        updates: list[tuple[bytes, int]],
    ) -> None:
        # New and grown tiles in one upsert statement rather than a step per grown tile
        # (about one per level in every append).
        rows = inserts + [(key, hashes) for hashes, key in updates]
        _insert_rows(conn, TILES, rows, " ON CONFLICT (key) DO UPDATE SET hashes = excluded.hashes")

    def _last_tiles(
        self, conn: sqlite3.Connection, levels: Sequence[int]
    ) -> dict[int, tuple[int, bytes]]:
        # The last tile of every level in one statement: each statement step releases the
        # GIL, and in the service taking it back can wait behind other threads.
        if not levels:
            return {}
        one = "SELECT * FROM (SELECT key, hashes FROM node_tiles WHERE key BETWEEN ? AND ?"
        one += " ORDER BY key DESC LIMIT 1)"
        rows = conn.execute(
            " UNION ALL ".join([one] * len(levels)),
            [bound for level in levels for bound in tiles.level_bounds(level)],
        ).fetchall()
        return {int(key) >> tiles.NODE_LEVEL_SHIFT: (int(key), bytes(h)) for key, h in rows}

    def _fetch_tiles(self, keys: Sequence[int]) -> dict[int, bytes]:
        found: dict[int, bytes] = {}
        with self._snapshot("get_nodes") as conn:
            for start in range(0, len(keys), _IN_CHUNK):
                chunk = keys[start : start + _IN_CHUNK]
                marks = ",".join("?" * len(chunk))
                for key, hashes in conn.execute(
                    f"SELECT key, hashes FROM node_tiles WHERE key IN ({marks})", chunk
                ):
                    found[key] = bytes(hashes)
        return found

    def close(self) -> None:
        """Closes every connection; later calls raise StoreError."""
        self._pool.close()
