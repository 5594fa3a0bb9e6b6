"""What the SQLite store promises beyond the port: durable settings on every connection,
recorded migrations, refusal of a newer schema, one connection per concurrent caller."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from veriot.core.errors import StoreError
from veriot.storage.migrations import load_migrations
from veriot.storage.sqlite import SqliteStore
from veriot.storage.sqlite.pool import connect
from veriot.storage.sqlite.store import split_statements
from veriot.storage.testing import make_batch, make_device, make_reading


def test_every_connection_is_durable_with_foreign_keys(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "v.db")
    try:
        seen = []
        barrier = threading.Barrier(3)

        def probe() -> None:
            with store._pool.connection() as conn:
                barrier.wait(timeout=10)  # all three hold a connection at once
                seen.append(
                    (
                        id(conn),
                        conn.execute("PRAGMA journal_mode").fetchone()[0],
                        conn.execute("PRAGMA synchronous").fetchone()[0],
                        conn.execute("PRAGMA foreign_keys").fetchone()[0],
                    )
                )

        threads = [threading.Thread(target=probe) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=20)
        assert len({conn for conn, *_ in seen}) == 3
        assert {tuple(rest) for _, *rest in seen} == {("wal", 2, 1)}  # 2 is FULL
    finally:
        store.close()


def test_a_reading_must_reference_a_device_row(tmp_path: Path) -> None:
    SqliteStore(tmp_path / "v.db").close()
    conn = connect(tmp_path / "v.db")
    with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
        conn.execute("INSERT INTO readings VALUES (0, 0, 42, 0, x'00', x'00', x'00', 0, 0, ' ', 0)")
    conn.close()


def test_migrations_are_recorded_once_each(tmp_path: Path) -> None:
    SqliteStore(tmp_path / "v.db").close()
    SqliteStore(tmp_path / "v.db").close()
    conn = connect(tmp_path / "v.db")
    rows = conn.execute("SELECT version, name FROM schema_migrations ORDER BY version").fetchall()
    conn.close()
    shipped = load_migrations("veriot.storage.sqlite")
    assert rows == [(m.version, m.name) for m in shipped]


def test_a_database_from_a_newer_veriot_is_refused(tmp_path: Path) -> None:
    SqliteStore(tmp_path / "v.db").close()
    conn = connect(tmp_path / "v.db")
    conn.execute("INSERT INTO schema_migrations VALUES (999, 'future', 0)")
    conn.close()
    with pytest.raises(StoreError, match="migration 999"):
        SqliteStore(tmp_path / "v.db")


def test_an_unopenable_path_raises_store_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(StoreError):
        SqliteStore(tmp_path / "file" / "v.db")
    (tmp_path / "junk.db").write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError):
        SqliteStore(tmp_path / "junk.db")


def test_a_committed_append_is_in_the_file_for_another_connection(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "v.db")
    device = make_device(1)
    store.add_device(device)
    store.append(make_batch([make_reading(device.did, 0, 0)]))
    # Another process would open its own connection: it sees the commit at once.
    other = sqlite3.connect(tmp_path / "v.db")
    assert other.execute("SELECT count(*) FROM readings").fetchone() == (1,)
    other.close()
    store.close()


def test_split_statements_keeps_triggers_and_comments_whole() -> None:
    script = """-- a comment; with a semicolon
CREATE TABLE t (x INTEGER);
CREATE TRIGGER tr AFTER INSERT ON t BEGIN
    UPDATE t SET x = x + 1; SELECT 1;
END;
-- trailing comment
"""
    statements = list(split_statements(script))
    assert len(statements) == 2
    assert statements[1].startswith("CREATE TRIGGER") and statements[1].endswith("END;")
    with pytest.raises(StoreError):
        list(split_statements("CREATE TABLE t (x INTEGER)"))
