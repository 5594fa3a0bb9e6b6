"""What the SQLite store promises beyond the port: durable settings on every connection,
recorded migrations, refusal of a newer schema, one connection per concurrent caller."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from veriot.core.errors import StoreError
from veriot.core.types import Device, StoredReading
from veriot.ports import AppendBatch
from veriot.storage import codec, sql
from veriot.storage.migrations import load_migrations
from veriot.storage.sqlite import SqliteStore
from veriot.storage.sqlite import store as sqlite_store
from veriot.storage.sqlite.pool import connect
from veriot.storage.sqlite.store import split_statements
from veriot.storage.testing import (
    make_batch,
    make_device,
    make_mixed_batch,
    make_reading,
    make_segment,
    readings_for,
)


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


def test_a_segment_must_reference_a_device_row(tmp_path: Path) -> None:
    SqliteStore(tmp_path / "v.db").close()
    conn = connect(tmp_path / "v.db")
    with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
        conn.execute("INSERT INTO segments VALUES (0, 1, 42, 0, 0, 0, 0, ' ', 0, x'00')")
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
    assert other.execute("SELECT count, length(body) > 0 FROM segments").fetchall() == [(1, 1)]
    assert other.execute("SELECT first_idx FROM recent_ids").fetchall() == [(0,)]
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


def legacy_database(path: Path, readings: list[StoredReading], devices: list[Device]) -> None:
    """A database as veriot left it before segments: migrations 1 and 2 only, one
    readings row per reading."""
    conn = connect(path)
    conn.execute(
        "CREATE TABLE schema_migrations ("
        "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)"
    )
    for migration in load_migrations("veriot.storage.sqlite")[:2]:
        for statement in split_statements(migration.sql):
            conn.execute(statement)
        conn.execute(
            "INSERT INTO schema_migrations VALUES (?, ?, 0)", (migration.version, migration.name)
        )
    for n, device in enumerate(devices, 1):
        conn.execute(
            "INSERT INTO devices (id, did, public_key, name, type, registered_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (n, device.did, device.public_key, device.name, device.type, device.registered_at),
        )
    ids = {device.did: n for n, device in enumerate(devices, 1)}
    conn.executemany(
        "INSERT INTO readings (idx, id_key, device_id, seq, message, auth, leaf_hash,"
        " received_at, first_time, names, gap) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [codec.reading_values(r, ids[r.signed.reading.device]) for r in readings],
    )
    conn.commit()
    conn.close()


def test_readings_of_a_legacy_database_are_found_after_the_upgrade(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    devices = [make_device(1), make_device(2)]
    readings = readings_for([d.did for d in devices], 60)
    readings += [make_reading(devices[0].did, 60, 120, batch=True, gap=True)]
    legacy_database(tmp_path / "v.db", readings, devices)
    monkeypatch.setattr(sql, "CONVERT_CHUNK", 50)  # several transactions
    store = SqliteStore(tmp_path / "v.db")
    try:
        assert store.applied_migrations == [3, 4, 5]
        assert store.log_size() == 121
        assert list(store.iter_readings()) == readings
        for stored in readings:
            assert store.get_reading(stored.id) == stored
            assert store.get_reading_at(stored.index) == stored
            device, seq = stored.signed.reading.device, stored.signed.reading.seq
            assert store.find_seqs(device, [seq]) == {seq: stored}
        assert store.last_seqs() == {devices[0].did: 60, devices[1].did: 59}
        with pytest.raises(StoreError, match="sequence number 60"):
            store.append(AppendBatch(readings=[make_reading(devices[0].did, 60, 121)]))
        store.append(AppendBatch(readings=[make_reading(devices[0].did, 61, 121)]))
        assert store.log_size() == 122
    finally:
        store.close()
    conn = connect(tmp_path / "v.db")
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    conn.close()
    assert "readings" not in tables


def test_index_entries_changed_behind_the_stores_back_are_reported(tmp_path: Path) -> None:
    from veriot.storage.testing import make_alert, make_mixed_batch, make_segment

    store = SqliteStore(tmp_path / "v.db")
    device = make_device(1)
    store.add_device(device)
    store.append(make_mixed_batch([make_segment(device.did, 0, 0, 4)], alerts=[make_alert(4)]))
    assert store.index_mismatches(0, 10) == []
    db = sqlite3.connect(tmp_path / "v.db")
    with db:
        db.execute("UPDATE segments SET names = ' temp ', min_time = 0")
        db.execute("UPDATE alerts SET score = 0.5")
        db.execute("INSERT INTO reading_ids VALUES (0, 42, 7)")  # an id entry for no reading
    db.close()
    found = {(m.index, m.count): m.detail for m in store.index_mismatches(0, 10)}
    assert set(found) == {(0, 4), (4, 1), (7, 1)}
    assert "min_time is 0.0" in found[(0, 4)] and "names is ' temp '" in found[(0, 4)]
    assert "alert at 4" in found[(4, 1)] and "0.5" in found[(4, 1)]
    assert "no reading" in found[(7, 1)]
    store.close()


def _ids_table() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:")
    conn.execute(
        "CREATE TABLE reading_ids (epoch INTEGER NOT NULL, id_key INTEGER NOT NULL,"
        " idx INTEGER NOT NULL, PRIMARY KEY (epoch, id_key, idx)) WITHOUT ROWID"
    )
    return conn


@pytest.mark.parametrize("count", [1, 2, 3, 5, 8, 9, 100, 1000, 1025])
def test_a_bulk_insert_writes_exactly_its_rows(count: int, monkeypatch: pytest.MonkeyPatch) -> None:
    # 31 variables per statement: 8 rows of 3 columns, so the larger counts take several
    # statements, each padded to a power of two that must never reach the table.
    monkeypatch.setattr(sqlite_store, "_MAX_VARIABLES", 31)
    conn = _ids_table()
    rows = [(i >> 4, i * 7 - 500, i) for i in range(count)]
    sqlite_store._insert_rows(conn, sql.READING_IDS, rows)
    assert (
        conn.execute("SELECT epoch, id_key, idx FROM reading_ids ORDER BY idx").fetchall() == rows
    )


def test_bulk_inserts_of_every_count_share_a_few_statement_texts() -> None:
    conn = _ids_table()
    texts: set[str] = set()
    conn.set_trace_callback(texts.add)
    start = 0
    for count in range(1, 301):
        sqlite_store._insert_rows(
            conn, sql.READING_IDS, [(0, i, i) for i in range(start, start + count)]
        )
        start += count
    # The trace shows each statement with its values bound: its rows of VALUES tell
    # which statement text it ran. One text per power of two up to 512 rows, not one per
    # count: the connection's statement cache then serves every later insert.
    shapes = {text.count("), (") + 1 for text in texts if text.startswith("INSERT")}
    assert len(shapes) <= 10
    assert conn.execute("SELECT count(*) FROM reading_ids").fetchone() == (start,)


def test_a_bulk_upsert_updates_the_rows_it_meets() -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE node_tiles (key INTEGER PRIMARY KEY, hashes BLOB NOT NULL)")
    upsert = " ON CONFLICT (key) DO UPDATE SET hashes = excluded.hashes"
    sqlite_store._insert_rows(conn, sql.TILES, [(1, b"a"), (2, b"b"), (3, b"c")], upsert)
    sqlite_store._insert_rows(conn, sql.TILES, [(1, b"x"), (9, b"y"), (3, b"z")], upsert)
    assert conn.execute("SELECT key, hashes FROM node_tiles ORDER BY key").fetchall() == [
        (1, b"x"),
        (2, b"b"),
        (3, b"z"),
        (9, b"y"),
    ]


def test_ids_move_to_the_epoch_index_when_the_log_passes_an_epochs_end(tmp_path: Path) -> None:
    """Ids wait in recent_ids, a row per segment, until the log passes the end of their
    epoch; the append that passes it moves the rows of every segment that starts before
    that end to reading_ids. A store written before migration 4 has the ids of the epoch
    it was writing in reading_ids already: they stay found as it fills up."""
    store = SqliteStore(tmp_path / "v.db")
    device = make_device(1)
    store.add_device(device)
    coarse = 1 << codec.ID_EPOCH_BITS
    segments = [make_segment(device.did, 0, 0, 1000)]
    store.append(make_mixed_batch(segments))
    db = sqlite3.connect(tmp_path / "v.db")
    with db:  # as a veriot before migration 4 wrote them
        db.execute("DELETE FROM recent_ids")
        db.executemany("INSERT INTO reading_ids VALUES (?, ?, ?)", codec.id_values(segments[0]))

    def tables() -> tuple[list[int], int, int]:
        recent = db.execute("SELECT first_idx FROM recent_ids ORDER BY first_idx").fetchall()
        (old,) = db.execute("SELECT count(*) FROM reading_ids").fetchone()
        (chunks,) = db.execute("SELECT count(*) FROM id_chunks").fetchone()
        return [first for (first,) in recent], old, chunks

    def append(first_index: int, count: int) -> None:
        segments.append(make_segment(device.did, first_index, first_index, count))
        store.append(make_mixed_batch(segments[-1:]))
        for segment in segments:
            for offset in {0, 1, len(segment.ids) // 2, len(segment.ids) - 1}:
                found = store.get_reading(segment.ids[offset])
                assert found is not None and found.index == segment.first_index + offset
        assert store.index_mismatches(0, store.log_size()) == []

    try:
        append(1000, coarse - 1010)  # up to 10 short of the end
        assert tables() == ([1000], 1000, 0)
        append(coarse - 10, 30)  # passes the end: the new segment's last 20 ids stay
        assert tables() == ([coarse], 1000, codec.ID_BUCKETS)
        append(coarse + 20, 5)
        assert tables() == ([coarse, coarse + 20], 1000, codec.ID_BUCKETS)
        # The chunks hold each id below the end that was not in reading_ids, once.
        chunks = db.execute("SELECT epoch, id_keys, offsets FROM id_chunks").fetchall()
        entries = [e for epoch, k, o in chunks for e in codec.chunk_entries(epoch, k, o)]
        want = codec.id_values(segments[1]) + codec.id_values(segments[2])[:10]
        assert sorted(entries) == sorted(want)
        # Every reading is still found after a restart.
        store.close()
        store = SqliteStore(tmp_path / "v.db")
        for segment in segments:
            assert [store.get_reading(i) for i in segment.ids[::97]] == [
                store.get_reading_at(segment.first_index + k)
                for k in range(0, len(segment.ids), 97)
            ]
    finally:
        db.close()
        store.close()


def test_id_chunks_of_migration_4_move_to_epoch_order(tmp_path: Path) -> None:
    """Migration 4 kept id_chunks in (bucket, epoch) order; migration 5 rewrites them in
    (epoch, bucket) order, where a seal appends, and every reading is still found."""
    store = SqliteStore(tmp_path / "v.db")
    device = make_device(1)
    store.add_device(device)
    epoch = 1 << codec.ID_EPOCH_BITS
    segments = [make_segment(device.did, 0, 0, 2 * epoch + 100)]
    store.append(make_mixed_batch(segments))
    store.close()
    db = sqlite3.connect(tmp_path / "v.db")
    try:
        chunks = db.execute("SELECT epoch, bucket, id_keys, offsets FROM id_chunks").fetchall()
        assert len(chunks) == 2 * codec.ID_BUCKETS
        with db:  # the table as migration 4 left it
            db.execute("DROP TABLE id_chunks")
            db.execute(
                "CREATE TABLE id_chunks (bucket INTEGER NOT NULL, epoch INTEGER NOT NULL,"
                " id_keys BLOB NOT NULL, offsets BLOB NOT NULL, PRIMARY KEY (bucket, epoch))"
                " WITHOUT ROWID"
            )
            db.execute("CREATE INDEX id_chunks_epoch ON id_chunks (epoch)")
            db.executemany(
                "INSERT INTO id_chunks VALUES (?, ?, ?, ?)", [(b, e, k, o) for e, b, k, o in chunks]
            )
            db.execute("DELETE FROM schema_migrations WHERE version = 5")
        store = SqliteStore(tmp_path / "v.db")
        assert store.applied_migrations == [5]
        moved = db.execute("SELECT epoch, bucket, id_keys, offsets FROM id_chunks").fetchall()
        assert moved == sorted(chunks)  # every row, now read in (epoch, bucket) order
        (table,) = db.execute("SELECT sql FROM sqlite_master WHERE name = 'id_chunks'").fetchone()
        assert "PRIMARY KEY (epoch, bucket)" in table
        for offset in [0, 1, epoch - 1, epoch, 2 * epoch - 1, 2 * epoch, 2 * epoch + 99]:
            found = store.get_reading(segments[0].ids[offset])
            assert found is not None and found.index == offset
        assert store.get_reading("ab" * 32) is None
        assert store.index_mismatches(0, store.log_size()) == []
    finally:
        db.close()
        store.close()


def test_a_recent_id_changed_behind_the_stores_back_is_reported(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "v.db")
    device = make_device(1)
    store.add_device(device)
    segment = make_segment(device.did, 0, 0, 6)
    store.append(make_mixed_batch([segment]))
    db = sqlite3.connect(tmp_path / "v.db")
    with db:
        (keys,) = db.execute("SELECT id_keys FROM recent_ids").fetchone()
        wrong = keys[:16] + bytes(8) + keys[24:]  # the third reading's key zeroed
        db.execute("UPDATE recent_ids SET id_keys = ?", (wrong,))
        db.execute("INSERT INTO recent_ids VALUES (9, ?)", (keys[:8],))  # no reading at 9
    db.close()
    try:
        assert store.get_reading(segment.ids[2]) is None
        assert store.get_reading(segment.ids[3]) is not None
        found = {(m.index, m.count): m.detail for m in store.index_mismatches(0, 10)}
        assert set(found) == {(0, 6), (9, 1)}
        assert "1 of its readings cannot be found by id" in found[(0, 6)]
        assert "1 id entries point at its readings wrongly" in found[(0, 6)]
        assert "no reading" in found[(9, 1)]
    finally:
        store.close()
