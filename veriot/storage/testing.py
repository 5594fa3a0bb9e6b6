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
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from veriot.core.canonical import reading_id, reading_leaf, reading_message
from veriot.core.types import (
    BatchAuth,
    BatchSeal,
    Device,
    NodeId,
    Reading,
    Record,
    SecurityEvent,
    Segment,
    SignedReading,
    StoredReading,
    reading_columns,
)
from veriot.ledger.batch import batch_tree
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


def make_plain_reading(
    device: str, seq: int, *, names: Sequence[str] = NAMES, time: float | None = None
) -> Reading:
    """The Reading make_reading signs: one record per name, the first at `time` (default
    BASE_TIME + seq)."""
    at = BASE_TIME + seq if time is None else time
    records = tuple(
        Record(name, value=20.0 + i + seq / 1000, time=at + i, unit=UNITS.get(name, ""))
        for i, name in enumerate(names)
    )
    return Reading(device=device, seq=seq, records=records)


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
    reading = make_plain_reading(device, seq, names=names, time=time)
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
        received_at=reading.records[0].time + 0.25 if received_at is None else received_at,
        gap=gap,
    )


SEGMENT_KINDS = ("signatures", "batch_auths", "sealed")
"""The ways a Segment's readings are signed; see make_segment."""


def make_segment(
    device: str,
    first_seq: int,
    first_index: int,
    count: int,
    *,
    kind: str = "signatures",
    positions: Sequence[int] | None = None,
    batch_size: int | None = None,
    names: Sequence[str] = NAMES,
    gaps: Sequence[int] = (),
    received_at: float | None = None,
) -> Segment:
    """A Segment of `count` readings of `device` from log index `first_index`, signed as
    `kind` says (one of SEGMENT_KINDS). Readings are those of make_plain_reading; the
    i-th has seq `first_seq + i`, except in a sealed segment, where the member at batch
    position p has seq `first_seq + p`. A sealed segment holds the members at `positions`
    (default 0..count-1) of a batch of `batch_size` (default count) with a real batch
    tree; `gaps` are the offsets in the segment flagged as gaps. Signatures are made up;
    leaf hashes are the real RFC 9162 ones."""
    sealed = kind == "sealed"
    if kind not in SEGMENT_KINDS:
        raise ValueError(f"kind {kind!r} is not one of {SEGMENT_KINDS}")
    picks = list(range(count) if positions is None else positions)
    size = batch_size or (max(picks) + 1 if sealed else count)
    members = [make_plain_reading(device, first_seq + p, names=names) for p in range(size)]
    signature = hashlib.sha512(f"{device}/{first_seq}/{kind}".encode()).digest()
    seal: BatchSeal | None = None
    signed: list[SignedReading] = []
    if sealed:
        leaves = [leaf_hash(reading_message(m)) for m in members]
        root, paths = batch_tree(leaves)
        seal = BatchSeal(root=root, signature=signature, leaves=tuple(leaves))
        for p in picks:
            auth = BatchAuth(root, size, p, paths[p], signature)
            signed.append(SignedReading(members[p], batch=auth))
    else:
        readings = [make_plain_reading(device, first_seq + i, names=names) for i in range(count)]
        for i, reading in enumerate(readings):
            if kind == "batch_auths":
                auth = BatchAuth(
                    root=hashlib.sha256(f"root/{first_seq}".encode()).digest(),
                    size=count + 1,
                    index=i,
                    path=(bytes(32), b"\xff" * 32, bytes([i]) * 32),
                    signature=signature,
                )
                signed.append(SignedReading(reading, batch=auth))
            else:
                own = hashlib.sha512(f"{device}/{reading.seq}".encode()).digest()
                signed.append(SignedReading(reading, signature=own))
    messages = tuple(reading_message(s.reading) for s in signed)
    at = BASE_TIME + first_seq + 0.25 if received_at is None else received_at
    signed_readings = tuple(s.reading for s in signed)
    seqs, times, record_names = reading_columns(signed_readings)
    return Segment(
        device=device,
        first_index=first_index,
        received_at=at,
        readings=signed_readings,
        seqs=seqs,
        times=times,
        names=record_names,
        messages=messages,
        ids=tuple(reading_id(m) for m in messages),
        leaf_hashes=tuple(
            leaf_hash(reading_leaf(s, m)) for s, m in zip(signed, messages, strict=True)
        ),
        gaps=tuple(i in gaps for i in range(len(signed))),
        signatures=tuple(s.signature for s in signed if s.signature is not None),
        batch_auths=() if sealed else tuple(s.batch for s in signed if s.batch is not None),
        seal=seal,
        positions=tuple(picks) if sealed else (),
    )


def make_mixed_batch(
    segments: Sequence[Segment] = (),
    readings: Sequence[StoredReading] = (),
    alerts: Sequence[tuple[int, bytes]] = (),
    events: Sequence[SecurityEvent] = (),
) -> AppendBatch:
    """An AppendBatch of segments, readings and alerts with the tree nodes their leaves
    complete. Precondition: their indices together form one contiguous range."""
    indices = [r.index for r in readings] + [i for i, _ in alerts]
    for segment in segments:
        indices += [segment.first_index, segment.end_index - 1]
    nodes = completed_nodes(min(indices), max(indices) + 1) if indices else []
    return AppendBatch(
        readings=readings, nodes=nodes, events=events, alerts=alerts, segments=segments
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


def tamper_sqlite_readings(path: Path, change: Callable[[dict[int, StoredReading]], None]) -> None:
    """Rewrites the readings of the SQLite store file at `path` behind its back, as tests
    of audits need: `change` edits the readings (by log index) in place, and every
    reading is written back as a one-reading segment of its `message` (when set) or its
    canonical message. Precondition: no store has the file open for writing."""
    import sqlite3

    from veriot.ledger.segment import segment_of
    from veriot.storage import codec
    from veriot.storage.sqlite import SqliteStore

    store = SqliteStore(path)
    try:
        readings = {r.index: r for r in store.iter_readings()}
    finally:
        store.close()
    change(readings)
    db = sqlite3.connect(path)
    try:
        device_ids = dict(db.execute("SELECT did, id FROM devices").fetchall())
        db.execute("DELETE FROM segments")
        db.execute("DELETE FROM reading_ids")
        db.execute("DELETE FROM recent_ids")
        for stored in readings.values():
            (segment,) = segment_of([stored])
            db.execute(
                "INSERT INTO segments VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                codec.segment_values(segment, device_ids[segment.device]),
            )
            db.executemany("INSERT INTO reading_ids VALUES (?, ?, ?)", codec.id_values(segment))
        db.commit()
    finally:
        db.close()
