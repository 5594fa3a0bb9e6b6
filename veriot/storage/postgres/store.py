"""The PostgreSQL Store: the same tables as SQLite, bulk writes through COPY.

Appends take a transaction-scoped advisory lock, so writers in several processes keep the
log contiguous; readers never wait for it.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import psycopg
from psycopg import errors as pgerrors

from veriot.storage import tiles
from veriot.storage.migrations import check_newest, load_migrations
from veriot.storage.postgres.pool import ConnectionPool, check_schema
from veriot.storage.sql import (
    ALERTS,
    ID_CHUNKS,
    READING_IDS,
    RECENT_IDS,
    SEGMENTS,
    TILES,
    Rows,
    SqlStore,
    Table,
)

Conn = psycopg.Connection[tuple[Any, ...]]

# COPY in binary needs each column's type; the lists follow the tables' column orders.
_COPY_TYPES: dict[str, list[str]] = {
    SEGMENTS.name: [
        "int8", "int4", "int4", "int8", "int8", "float8", "float8", "text", "float8", "bytea",
    ],
    READING_IDS.name: ["int8", "int8", "int8"],
    RECENT_IDS.name: ["int8", "bytea"],
    ID_CHUNKS.name: ["int8", "int2", "bytea", "bytea"],
    ALERTS.name: ["int8", "bytea", "text", "text", "float8", "float8"],
    TILES.name: ["int8", "bytea"],
}  # fmt: skip
_COPY_SQL = {
    table.name: f"COPY {table.name} ({', '.join(table.columns)}) FROM STDIN (FORMAT BINARY)"
    for table in (SEGMENTS, READING_IDS, RECENT_IDS, ID_CHUNKS, ALERTS, TILES)
}
# One probe of the id index per epoch of log indices (see codec.ID_EPOCH_BITS).
_BY_ID = (
    "SELECT idx FROM reading_ids WHERE id_key = ? AND epoch = ANY(ARRAY("
    "SELECT generate_series(0, coalesce((SELECT max(epoch) FROM reading_ids), 0))))"
)

# Arbitrary constants naming veriot's advisory locks (pg_advisory_xact_lock takes a bigint).
_MIGRATE_LOCK = 0x7665_7269_6F74_0001
_APPEND_LOCK = 0x7665_7269_6F74_0002


def migrate(conn: Conn) -> list[int]:
    """Applies the pending migrations, each in its own transaction; returns their numbers.
    Raises StoreError when the database has a migration this code does not know."""
    known = load_migrations("veriot.storage.postgres")
    applied: list[int] = []
    for migration in known:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATE_LOCK,))
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY,"
                " name TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)"
            )
            done = conn.execute(
                "SELECT 1 FROM schema_migrations WHERE version = %s", (migration.version,)
            ).fetchone()
            if done is None:
                conn.execute(migration.sql.encode())
                conn.execute(
                    "INSERT INTO schema_migrations VALUES (%s, %s, %s)",
                    (migration.version, migration.name, time.time()),
                )
                applied.append(migration.version)
    row = conn.execute("SELECT max(version) FROM schema_migrations").fetchone()
    check_newest(None if row is None else row[0], len(known))
    return applied


@functools.lru_cache(maxsize=512)
def format_style(sql: str) -> str:
    """`sql` with its qmark placeholders (`?`) as psycopg's (`%s`). Precondition: `sql` has
    no `?` or `%` other than placeholders."""
    return sql.replace("?", "%s")


class PostgresStore(SqlStore[Conn]):
    """The Store in PostgreSQL at `dsn`, in `schema` when given (created when missing)
    or the connection's default search path. Safe to share between threads.

    A call whose connection breaks raises StoreError; the next call reconnects.
    """

    # Segments never overlap, so the one that starts last ends last.
    LOG_SIZE_SQL = (
        "SELECT greatest(coalesce((SELECT first_idx + count FROM segments"
        " ORDER BY first_idx DESC LIMIT 1), 0), coalesce((SELECT max(idx) FROM alerts), -1) + 1)"
    )
    BY_ID_SQL = _BY_ID
    NAME_MATCH_SQL = "strpos(names, ?) > 0"
    # The heap takes a seal's rows at its end; its key, (bucket, epoch), finds a bucket's.
    CHUNKS_OF_BUCKET_SQL = "SELECT epoch, id_keys, offsets FROM id_chunks WHERE bucket = ?"
    KEY_MATCH_SQL = "position(? IN id_keys) > 0"
    LEGACY_READINGS_SQL = "SELECT 1 WHERE to_regclass('readings') IS NOT NULL"
    UNIQUE_VIOLATION = pgerrors.UniqueViolation

    def __init__(
        self, dsn: str, schema: str | None = None, application_name: str = "veriot"
    ) -> None:
        super().__init__()
        self._pool = ConnectionPool(dsn, schema, application_name)
        self.where = self._pool.where
        try:
            with self._pool.connection("migrate") as conn:
                if schema is not None:
                    conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{check_schema(schema)}"')
                applied = migrate(conn)
            self._opened(applied)
        except BaseException:
            self._pool.close()
            raise

    def _connection(self, what: str) -> AbstractContextManager[Conn]:
        return self._pool.connection(what)

    @contextmanager
    def _snapshot(self, what: str) -> Iterator[Conn]:
        with self._pool.connection(what) as conn, conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            yield conn

    @contextmanager
    def _write(self, what: str, *, log: bool = False) -> Iterator[Conn]:
        with self._pool.connection(what) as conn, conn.transaction():
            if log:
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_APPEND_LOCK,))
            yield conn

    def _execute(self, conn: Conn, sql: str, params: Sequence[Any] = ()) -> Rows:
        return conn.execute(format_style(sql), params)

    def _executemany(self, conn: Conn, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with conn.cursor() as cur:
            cur.executemany(format_style(sql), rows)

    def _bulk_insert(self, conn: Conn, table: Table, rows: Sequence[Sequence[Any]]) -> None:
        with conn.cursor() as cur, cur.copy(_COPY_SQL[table.name]) as copy:
            copy.set_types(_COPY_TYPES[table.name])
            for row in rows:
                copy.write_row(row)

    def _last_tiles(self, conn: Conn, levels: Sequence[int]) -> dict[int, tuple[int, bytes]]:
        # The last tile of every level, in one round trip.
        rows = conn.execute(
            "SELECT t.key, t.hashes FROM unnest(%s::int8[]) AS l (level) CROSS JOIN LATERAL"
            " (SELECT key, hashes FROM node_tiles WHERE key BETWEEN l.level << 56"
            " AND (l.level << 56) | 72057594037927935 ORDER BY key DESC LIMIT 1) AS t",
            (list(levels),),
        )
        return {int(key) >> tiles.NODE_LEVEL_SHIFT: (int(key), bytes(h)) for key, h in rows}

    def _fetch_tiles(self, keys: Sequence[int]) -> dict[int, bytes]:
        with self._pool.connection("get_nodes") as conn:
            rows = conn.execute(
                "SELECT key, hashes FROM node_tiles WHERE key = ANY(%s)", (list(keys),)
            )
            return {int(key): bytes(value) for key, value in rows}

    def close(self) -> None:
        """Closes every connection; later calls raise StoreError."""
        self._pool.close()
