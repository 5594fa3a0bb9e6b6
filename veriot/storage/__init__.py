"""Adapters behind the store port (`veriot.ports.Store`): sqlite/ (the default),
postgres/ and memory/ (for unit tests), chosen by `open_store` from a URL."""

from __future__ import annotations

from pathlib import Path

from veriot.core.errors import InputError
from veriot.ports import Store
from veriot.storage.memory import MemoryStore
from veriot.storage.sqlite import SqliteStore

__all__ = ["DEFAULT_SQLITE_NAME", "MemoryStore", "SqliteStore", "open_store"]

DEFAULT_SQLITE_NAME = "veriot.db"


def open_store(url: str | None, data_dir: Path) -> Store:
    """Opens (creating and migrating when needed) the store that `url` names:

    - None or "sqlite:///" : SQLite at data_dir/veriot.db
    - "sqlite:///PATH"      : SQLite at PATH (relative to the working directory;
                              "sqlite:////abs/path" for an absolute one)
    - "postgresql://..."   : PostgreSQL (also "postgres://...")
    - "memory:"            : an empty in-memory store

    Raises InputError for any other URL and StoreError when the store cannot be opened.
    """
    if url is None or url == "sqlite:///":
        return SqliteStore(data_dir / DEFAULT_SQLITE_NAME)
    if url.startswith("sqlite:///"):
        return SqliteStore(Path(url.removeprefix("sqlite:///")))
    if url.startswith(("postgresql://", "postgres://")):
        # Imported here so that psycopg loads only for PostgreSQL users.
        from veriot.storage.postgres import PostgresStore

        return PostgresStore(url)
    if url == "memory:":
        return MemoryStore()
    raise InputError(
        f"store URL {url.split('://')[0]!r}... is not supported; "
        "want sqlite:///PATH, postgresql://..., or memory:"
    )
