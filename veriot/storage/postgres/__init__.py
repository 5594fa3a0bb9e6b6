"""The PostgreSQL store adapter (psycopg 3)."""

from veriot.storage.postgres.store import PostgresStore

__all__ = ["PostgresStore"]
