"""Every store adapter behind one fixture, so one suite checks them all.

`backend` is parametrised over memory, sqlite (in tmp_path) and postgres (a fresh schema
in the test database, dropped afterwards). Without a reachable PostgreSQL the postgres
cases skip, or fail when CI is set.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import service_missing
from veriot.ports import Store
from veriot.storage.memory import MemoryStore
from veriot.storage.sqlite import SqliteStore
from veriot.storage.testing import drop_schema, find_test_postgres, fresh_schema_name


@dataclass
class Backend:
    """Opens stores of one kind at one place: each `open` gives a new store on the same
    data (for memory, the same object, since it keeps nothing across closes)."""

    name: str
    factory: Callable[[], Store]
    opened: list[Store] = field(default_factory=list)

    def open(self) -> Store:
        store = self.factory()
        self.opened.append(store)
        return store

    def close_all(self) -> None:
        for store in self.opened:
            store.close()


@pytest.fixture(scope="session")
def postgres_dsn() -> str:
    dsn, why = find_test_postgres()
    if dsn is None:
        service_missing(f"PostgreSQL ({why})")
        raise AssertionError("unreachable")
    return dsn


def _backend(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if kind == "memory":
        memory = MemoryStore()
        yield Backend(kind, lambda: memory)
        return
    if kind == "sqlite":
        path = tmp_path / "store" / "veriot.db"
        backend = Backend(kind, lambda: SqliteStore(path))
        yield backend
        backend.close_all()
        return
    dsn: str = request.getfixturevalue("postgres_dsn")
    schema = fresh_schema_name()
    from veriot.storage.postgres import PostgresStore

    backend = Backend(kind, lambda: PostgresStore(dsn, schema=schema))
    try:
        yield backend
    finally:
        backend.close_all()
        drop_schema(dsn, schema)


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    yield from _backend(request.param, request, tmp_path)


@pytest.fixture(params=["sqlite", "postgres"])
def durable_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """The backends that keep their data across close and reopen."""
    yield from _backend(request.param, request, tmp_path)


@pytest.fixture
def store(backend: Backend) -> Store:
    return backend.open()
