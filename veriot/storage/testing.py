"""Helpers for tests of anything behind the store port: small factories for devices,
readings and append batches, and where to find the test PostgreSQL.

Stores do not check signatures or tree hashes, so the factories fill them with fixed
bytes; leaf hashes are the real RFC 9162 ones so that audits over a store agree.
"""

from __future__ import annotations

import getpass
import hashlib
import os
import secrets
from collections.abc import Iterable, Sequence

from veriot.core.canonical import reading_id, reading_leaf, reading_message
from veriot.core.types import (
    BatchAuth,
    Device,
    NodeId,
    Reading,
    Record,
    SecurityEvent,
    SignedReading,
    StoredReading,
)
from veriot.ports import AppendBatch

BASE_TIME = 1_700_000_000.0
NAMES = ("temp", "hum", "pres")
UNITS = {"temp": "Cel", "hum": "%RH", "pres": "hPa"}

TEST_POSTGRES_ENV = "VERIOT_TEST_POSTGRES"
"""Environment variable that overrides the DSN of the test PostgreSQL database."""


def make_device(n: int = 0, registered_at: float = BASE_TIME - 3600) -> Device:
    """Device number `n`, with a made-up did and key (stores do not derive one from the other)."""
    key = hashlib.sha256(f"key-{n}".encode()).digest()
    return Device(
        did=f"did:key:z6Mktest{n:04d}",
        public_key=key,
        name=f"sensor-{n}",
        type="weather",
        registered_at=registered_at,
        metadata={"site": f"site-{n % 3}"},
    )


def leaf_hash(leaf: bytes) -> bytes:
    """RFC 9162 leaf hash."""
    return hashlib.sha256(b"\x00" + leaf).digest()


def make_reading(
    device: str,
    seq: int,
    index: int,
    *,
    names: Sequence[str] = NAMES,
    time: float | None = None,
    batch: bool = False,
    gap: bool = False,
    received_at: float | None = None,
) -> StoredReading:
    """A StoredReading of `device` at log `index` with one record per name; its first
    record's time is `time` (default BASE_TIME + seq). `batch` selects a batch
    authentication (with a two-hash path) instead of an own signature."""
    at = BASE_TIME + seq if time is None else time
    records = tuple(
        Record(name, value=20.0 + i + seq / 1000, time=at + i, unit=UNITS.get(name, ""))
        for i, name in enumerate(names)
    )
    reading = Reading(device=device, seq=seq, records=records)
    signature = hashlib.sha512(f"{device}/{seq}".encode()).digest()
    if batch:
        auth = BatchAuth(
            root=hashlib.sha256(f"root/{seq}".encode()).digest(),
            size=4,
            index=seq % 4,
            path=(bytes(32), b"\xff" * 32),
            signature=signature,
        )
        signed = SignedReading(reading=reading, batch=auth)
    else:
        signed = SignedReading(reading=reading, signature=signature)
    message = reading_message(reading)
    return StoredReading(
        id=reading_id(message),
        index=index,
        signed=signed,
        leaf_hash=leaf_hash(reading_leaf(signed, message)),
        received_at=at + 0.25 if received_at is None else received_at,
        gap=gap,
    )


def make_alert(index: int) -> tuple[int, bytes]:
    """An (index, leaf data) alert leaf: kind byte 2 and a made-up body."""
    return index, b"\x02" + f"alert at {index}".encode()


def completed_nodes(start: int, end: int) -> list[tuple[NodeId, bytes]]:
    """The tree nodes that become complete when leaves start..end-1 are appended to a log
    of `start` leaves: each leaf (level 0) and every perfect subtree it closes. Hashes are
    made up; stores do not check them."""
    out = []
    for leaf in range(start, end):
        level, width = 0, 1
        while (leaf + 1) % width == 0:
            node = NodeId(level, (leaf + 1) // width - 1)
            out.append((node, hashlib.sha256(f"node {level} {node.index}".encode()).digest()))
            level, width = level + 1, width * 2
    return out


def make_batch(
    readings: Sequence[StoredReading] = (),
    alerts: Sequence[tuple[int, bytes]] = (),
    events: Sequence[SecurityEvent] = (),
) -> AppendBatch:
    """An AppendBatch with the tree nodes its leaves complete. Precondition: the readings'
    and alerts' indices form one contiguous range."""
    indices = [r.index for r in readings] + [i for i, _ in alerts]
    nodes = completed_nodes(min(indices), max(indices) + 1) if indices else []
    return AppendBatch(readings=readings, nodes=nodes, events=events, alerts=alerts)


def readings_for(
    devices: Iterable[str], per_device: int, start_index: int = 0, first_seq: int = 0
) -> list[StoredReading]:
    """Readings of `devices` taking turns, seqs from `first_seq`, indices from `start_index`."""
    dids = list(devices)
    return [
        make_reading(dids[i % len(dids)], first_seq + i // len(dids), start_index + i)
        for i in range(per_device * len(dids))
    ]


def postgres_test_dsns() -> list[str]:
    """DSNs to try for the test database: $VERIOT_TEST_POSTGRES alone when set, else
    database `test` on 127.0.0.1:5432 as user postgres, then as the current user."""
    override = os.environ.get(TEST_POSTGRES_ENV)
    if override:
        return [override]
    return [
        "postgresql://postgres@127.0.0.1:5432/test",
        f"postgresql://{getpass.getuser()}@127.0.0.1:5432/test",
    ]


def find_test_postgres() -> tuple[str | None, str]:
    """(dsn, "") for the first test database that accepts a connection, else (None, why)."""
    import psycopg

    reasons = []
    for dsn in postgres_test_dsns():
        try:
            with psycopg.connect(dsn, connect_timeout=3) as conn:
                conn.execute("SELECT 1")
            return dsn, ""
        except psycopg.Error as exc:
            reasons.append(f"{dsn}: {str(exc).strip().splitlines()[0] if str(exc) else exc!r}")
    return None, "; ".join(reasons)


def fresh_schema_name() -> str:
    """A schema name no other test run uses."""
    return f"veriot_test_{os.getpid()}_{secrets.token_hex(4)}"


def drop_schema(dsn: str, schema: str) -> None:
    """Drops a schema made for a test, with everything in it."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
