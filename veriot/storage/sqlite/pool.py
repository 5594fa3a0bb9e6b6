"""SQLite connections for a store shared by threads: a connection is used by one thread at
a time, borrowed from an idle list and given back, so concurrent readers each get their
own and WAL lets them read while the writer writes."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from veriot.core.errors import StoreError
from veriot.storage.pooling import IdleConnections

BUSY_TIMEOUT_S = 10.0
CACHE_KIB = 16 * 1024


def connect(path: Path) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are begun explicitly) with WAL,
    synchronous=FULL (a committed transaction survives power loss) and foreign keys on."""
    # check_same_thread=False because close() may run on another thread than the one that
    # last used the connection; the pool still hands each connection to one thread at a time.
    conn = sqlite3.connect(
        path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
    )
    try:
        (mode,) = conn.execute("PRAGMA journal_mode=WAL").fetchone()
        if str(mode).lower() != "wal":
            raise StoreError(f"SQLite at {path} runs in journal mode {mode!r}; want 'wal'")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
    except BaseException:
        conn.close()
        raise
    return conn


class ConnectionPool:
    """Hands out connections to `path`, opening more when all are busy."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._idle = IdleConnections[sqlite3.Connection]()

    @contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        """A connection for the duration of the block. Raises StoreError when closed."""
        conn = self._idle.take(f"the store at {self._path} is closed")
        if conn is None:
            try:
                conn = connect(self._path)
            except sqlite3.Error as exc:
                raise StoreError(f"cannot open SQLite database {self._path}: {exc}") from exc
        try:
            yield conn
        finally:
            if conn.in_transaction:
                # Only reached when a caller's error handling failed; never keep a
                # half-done transaction on a pooled connection.
                conn.rollback()
            self._idle.give_back(conn)

    def close(self) -> None:
        """Closes the idle connections now and busy ones when they are given back."""
        self._idle.close()
