"""The SQLite store adapter (the default)."""

from veriot.storage.sqlite.store import SqliteStore

__all__ = ["SqliteStore"]
