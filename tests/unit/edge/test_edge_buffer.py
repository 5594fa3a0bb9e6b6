"""The edge buffer keeps sequence numbers and readings across restarts, and the line
parser names what is wrong with a line."""

from __future__ import annotations

from pathlib import Path

import pytest

from veriot.core.errors import InputError
from veriot.edge import EdgeBuffer, parse_line


def test_sequence_numbers_and_pending_readings_survive_a_restart(tmp_path: Path) -> None:
    buffer = EdgeBuffer(tmp_path)
    a = [buffer.add("did:a", lambda seq: f"a{seq}".encode()) for _ in range(3)]
    b = buffer.add("did:b", lambda seq: f"b{seq}".encode())
    assert [e.seq for e in a] == [a[0].seq, a[0].seq + 1, a[0].seq + 2]
    assert buffer.settle([a[0].id]) == 1
    buffer.close()
    again = EdgeBuffer(tmp_path)
    assert [e.payload for e in again.pending()] == [
        f"a{a[1].seq}".encode(),
        f"a{a[2].seq}".encode(),
        f"b{b.seq}".encode(),
    ]
    assert again.add("did:a", lambda seq: b"x").seq == a[2].seq + 1


def test_a_failed_signature_uses_no_number_and_stores_nothing(tmp_path: Path) -> None:
    buffer = EdgeBuffer(tmp_path)
    first = buffer.add("did:a", lambda seq: b"ok")

    def fail(seq: int) -> bytes:
        raise InputError("bad records")

    with pytest.raises(InputError):
        buffer.add("did:a", fail)
    assert buffer.add("did:a", lambda seq: b"ok").seq == first.seq + 1
    assert buffer.count() == 2


def test_refused_readings_are_kept_aside_with_their_reason(tmp_path: Path) -> None:
    buffer = EdgeBuffer(tmp_path)
    entry = buffer.add("did:a", lambda seq: b"r")
    assert buffer.settle((), [(entry.id, "revoked_device", "revoked at 12")]) == 1
    assert buffer.count() == 0
    assert buffer.rejected() == [("did:a", entry.seq, "revoked_device", "revoked at 12")]
    assert buffer.settle([entry.id]) == 0  # a late duplicate ack changes nothing


def test_parse_line_reads_records_and_names_problems() -> None:
    device, records = parse_line(
        '{"device": "pump", "records": [{"n": "temp", "v": 4, "u": "Cel"}]}', 100.0
    )
    assert device == "pump"
    assert (records[0].name, records[0].value, records[0].time, records[0].unit) == (
        "temp",
        4.0,
        100.0,
        "Cel",
    )
    for line, problem in [
        ("{oops", "not JSON"),
        ('{"records": []}', "device"),
        ('{"device": "p", "records": []}', "non-empty"),
        ('{"device": "p", "records": [{"n": "t", "v": "hot"}]}', "finite number"),
    ]:
        with pytest.raises(InputError, match=problem):
            parse_line(line, 0.0)
