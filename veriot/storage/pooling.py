"""The idle list that the SQLite and PostgreSQL connection pools share: connections are
borrowed for one call and given back, and closing the pool closes them all."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Generic, Protocol, TypeVar

from veriot.core.errors import StoreError


class Closable(Protocol):
    def close(self) -> None: ...


C = TypeVar("C", bound=Closable)


class IdleConnections(Generic[C]):
    """The idle connections of a pool. Safe to share between threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: list[C] = []
        self._closed = False

    def __iter__(self) -> Iterator[C]:
        """The connections idle now, as a snapshot (they stay idle, for inspection)."""
        with self._lock:
            return iter(list(self._idle))

    def take(self, closed: str) -> C | None:
        """An idle connection, or None when there is none. Raises StoreError with the
        message `closed` once the pool is closed."""
        with self._lock:
            if self._closed:
                raise StoreError(closed)
            return self._idle.pop() if self._idle else None

    def give_back(self, conn: C, most: int | None = None) -> None:
        """Keeps `conn` for a later `take`, or closes it when the pool is closed or already
        keeps `most` idle connections."""
        with self._lock:
            keep = not self._closed and (most is None or len(self._idle) < most)
            if keep:
                self._idle.append(conn)
        if not keep:
            conn.close()

    def drain(self) -> list[C]:
        """Removes and returns every idle connection; the caller closes them."""
        with self._lock:
            idle, self._idle = self._idle, []
        return idle

    def close(self) -> None:
        """Closes the idle connections now; connections given back later are closed then."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
