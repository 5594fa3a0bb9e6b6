"""What the PostgreSQL store promises beyond the port: a call whose connection breaks
raises StoreError and writes nothing; the next call reconnects."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from veriot.core.errors import StoreError
from veriot.ledger.segment import segment_readings
from veriot.storage import codec, open_store
from veriot.storage.migrations import load_migrations
from veriot.storage.postgres import PostgresStore
from veriot.storage.testing import (
    drop_schema,
    find_test_postgres,
    fresh_schema_name,
    make_batch,
    make_device,
    make_mixed_batch,
    make_reading,
    make_segment,
    readings_for,
)


@pytest.fixture
def pg() -> Iterator[tuple[str, str]]:
    dsn, why = find_test_postgres()
    if dsn is None:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is not available (CI is set, so this fails): {why}")
        pytest.skip(f"PostgreSQL is not available: {why}")
    schema = fresh_schema_name()
    yield dsn, schema
    drop_schema(dsn, schema)


def terminate(dsn: str, application_name: str) -> int:
    """Ends the server side of every connection of `application_name`, as a restart would."""
    with psycopg.connect(dsn, autocommit=True) as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity"
            " WHERE application_name = %s",
            (application_name,),
        ).fetchall()
    return len(rows)


def test_a_call_on_a_broken_connection_fails_and_the_next_reconnects(
    pg: tuple[str, str],
) -> None:
    dsn, schema = pg
    app = f"veriot-test-{secrets.token_hex(4)}"
    store = PostgresStore(dsn, schema=schema, application_name=app)
    try:
        device = make_device(1)
        store.add_device(device)
        store.append(make_batch([make_reading(device.did, 0, 0)]))
        assert terminate(dsn, app) >= 1
        second = make_batch([make_reading(device.did, 1, 1)])
        with pytest.raises(StoreError, match="next call reconnects"):
            store.append(second)
        assert store.log_size() == 1  # reconnected; the failed append left nothing
        assert store.find_seqs(device.did, [1]) == {}
        store.append(second)
        assert store.log_size() == 2
    finally:
        store.close()


def test_every_idle_connection_is_dropped_after_a_break(pg: tuple[str, str]) -> None:
    dsn, schema = pg
    app = f"veriot-test-{secrets.token_hex(4)}"
    store = PostgresStore(dsn, schema=schema, application_name=app)
    try:
        with store._pool.connection("a"), store._pool.connection("b"):
            pass  # two idle connections now
        assert terminate(dsn, app) == 2
        with pytest.raises(StoreError):
            store.log_size()
        assert store.log_size() == 0  # not a second failure on the other dead connection
    finally:
        store.close()


def test_a_connection_closed_on_this_side_is_replaced_silently(pg: tuple[str, str]) -> None:
    dsn, schema = pg
    store = PostgresStore(dsn, schema=schema)
    try:
        with store._pool.connection("test") as conn:
            conn.close()
        assert store.log_size() == 0
    finally:
        store.close()


def test_an_unreachable_server_raises_store_error_without_the_password() -> None:
    with pytest.raises(StoreError) as caught:
        PostgresStore("postgresql://someone:s3cret@127.0.0.1:1/test?connect_timeout=2")
    assert "s3cret" not in str(caught.value)


def test_open_store_reads_a_postgresql_url(pg: tuple[str, str], tmp_path: Path) -> None:
    dsn, schema = pg
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
    separator = "&" if "?" in dsn else "?"
    store = open_store(f"{dsn}{separator}options=-csearch_path%3D{schema}", tmp_path)
    try:
        assert isinstance(store, PostgresStore)
        store.add_device(make_device(1))
        with psycopg.connect(dsn) as check:
            (count,) = check.execute(f'SELECT count(*) FROM "{schema}".devices').fetchone() or (0,)
        assert count == 1
    finally:
        store.close()


def test_readings_of_a_legacy_database_are_found_after_the_upgrade(
    pg: tuple[str, str],
) -> None:
    dsn, schema = pg
    devices = [make_device(1), make_device(2)]
    readings = readings_for([d.did for d in devices], 30)
    with psycopg.connect(dsn) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
        conn.execute(f'SET search_path TO "{schema}"')
        conn.execute(
            "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY,"
            " name TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)"
        )
        for migration in load_migrations("veriot.storage.postgres")[:2]:
            conn.execute(migration.sql.encode())
            conn.execute(
                "INSERT INTO schema_migrations VALUES (%s, %s, 0)",
                (migration.version, migration.name),
            )
        ids = {}
        for device in devices:
            row = conn.execute(
                "INSERT INTO devices (did, public_key, name, type, registered_at)"
                " VALUES (%s, %s, %s, %s, %s) RETURNING id",
                (device.did, device.public_key, device.name, device.type, device.registered_at),
            ).fetchone()
            assert row is not None
            ids[device.did] = row[0]
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO readings VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                [codec.reading_values(r, ids[r.signed.reading.device]) for r in readings],
            )
    store = PostgresStore(dsn, schema=schema)
    try:
        assert store.applied_migrations == [3, 4, 5]
        assert store.log_size() == 60
        assert list(store.iter_readings()) == readings
        assert all(store.get_reading(r.id) == r for r in readings)
        assert store.last_seqs() == {devices[0].did: 29, devices[1].did: 29}
    finally:
        store.close()


def server_has_lz4(dsn: str) -> bool:
    with psycopg.connect(dsn, autocommit=True) as conn:
        try:
            conn.execute("SET default_toast_compression = lz4")
        except psycopg.Error:
            return False
    return True


def test_segment_bodies_are_compressed_with_lz4_where_the_server_has_it(
    pg: tuple[str, str],
) -> None:
    dsn, schema = pg
    store = PostgresStore(dsn, schema=schema)
    try:
        device = make_device(1)
        store.add_device(device)
        did = device.did
        segment = make_segment(did, 0, 0, 100)
        store.append(make_mixed_batch([segment]))
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'SET search_path TO "{schema}"')
            ((method, stored, raw),) = conn.execute(
                "SELECT pg_column_compression(body), pg_column_size(body), length(body)"
                " FROM segments"
            ).fetchall()
        assert method == ("lz4" if server_has_lz4(dsn) else "pglz")
        assert stored < raw  # compressed, whichever method
        assert list(store.iter_readings()) == list(segment_readings(segment))
    finally:
        store.close()
