"""The in-memory store adapter, for unit tests."""

from veriot.storage.memory.store import MemoryStore

__all__ = ["MemoryStore"]
