"""PostgreSQL connections for a store shared by threads, surviving server restarts.

A connection is borrowed for one call and given back. When a call fails because the
connection broke (the server restarted, the network dropped), that call raises StoreError
and every idle connection is dropped, so the next call connects afresh. Calls never retry
on their own: a write runs in one transaction, so a failed call wrote nothing, unless the
connection broke while COMMIT was in flight, when the outcome is unknown and the caller
must re-read the state (e.g. `log_size`) before writing again.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

from veriot.core.errors import StoreError
from veriot.storage.pooling import IdleConnections

MAX_IDLE = 8
CONNECT_TIMEOUT_S = 10
_SCHEMA = re.compile(r"[a-z_][a-z0-9_]{0,62}\Z")


def describe(dsn: str) -> str:
    """The DSN without its password, for error messages."""
    try:
        info = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "an unparsable DSN"
    host = info.get("host", "localhost")
    return f"{info.get('user', '')}@{host}:{info.get('port', 5432)}/{info.get('dbname', '')}"


def check_schema(schema: str) -> str:
    """Returns `schema` when it is a plain lowercase identifier; raises StoreError if not."""
    if not _SCHEMA.match(schema):
        raise StoreError(f"schema name {schema!r} must match {_SCHEMA.pattern}")
    return schema


class ConnectionPool:
    """Hands out autocommit connections to `dsn`; writes use explicit transactions."""

    def __init__(
        self, dsn: str, schema: str | None = None, application_name: str = "veriot"
    ) -> None:
        self._dsn = dsn
        self.where = describe(dsn)
        self._kwargs: dict[str, str | int] = {
            "application_name": application_name,
            "connect_timeout": CONNECT_TIMEOUT_S,
        }
        if schema is not None:
            self._kwargs["options"] = f"-c search_path={check_schema(schema)}"
        self._idle = IdleConnections[psycopg.Connection[tuple[Any, ...]]]()

    def _connect(self) -> psycopg.Connection[tuple[Any, ...]]:
        try:
            return psycopg.connect(self._dsn, autocommit=True, **self._kwargs)  # type: ignore[arg-type]
        except psycopg.Error as exc:
            raise StoreError(f"cannot connect to PostgreSQL at {self.where}: {exc}") from exc

    @contextmanager
    def connection(self, what: str) -> Iterator[psycopg.Connection[tuple[Any, ...]]]:
        """A healthy connection for the block. psycopg errors raised in the block become
        StoreError naming `what`; a broken connection is dropped with every idle one."""
        conn = self._idle.take(f"the store at {self.where} is closed")
        if conn is None or conn.closed or conn.broken:
            conn = self._connect()
        try:
            yield conn
        except psycopg.Error as exc:
            if conn.closed or conn.broken or isinstance(exc, psycopg.OperationalError):
                self._discard(conn)
                raise StoreError(
                    f"{what} failed: the connection to PostgreSQL at {self.where} broke "
                    f"({exc}); the next call reconnects"
                ) from exc
            self._give_back(conn)
            raise StoreError(f"{what} failed in PostgreSQL at {self.where}: {exc}") from exc
        except BaseException:
            self._give_back(conn)
            raise
        self._give_back(conn)

    def _give_back(self, conn: psycopg.Connection[tuple[Any, ...]]) -> None:
        if not (conn.closed or conn.broken):
            self._idle.give_back(conn, MAX_IDLE)

    def _discard(self, conn: psycopg.Connection[tuple[Any, ...]]) -> None:
        # After one broken connection the idle ones are most likely broken too (a restart
        # ends them all); dropping them now makes the next call connect afresh.
        for other in [conn, *self._idle.drain()]:
            other.close()

    def close(self) -> None:
        """Closes the idle connections now and busy ones when they are given back."""
        self._idle.close()
