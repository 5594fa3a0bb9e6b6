"""The canonical byte layouts that signatures and the log commit to."""

from __future__ import annotations

import hashlib
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from veriot.core import canonical
from veriot.core.errors import DecodeError, InputError
from veriot.core.types import BatchAuth, Reading, Record, SignedReading

DID = "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp"
SIG = bytes(range(64))
ROOT = bytes(range(32))


def reading(*records: Record, seq: int = 5, device: str = DID) -> Reading:
    return Reading(device, seq, records or (Record("temp", 4.5, 1000.25, "Cel"),))


def test_reading_message_layout() -> None:
    r = reading(Record("temp", 4.5, 1000.25, "Cel"), Record("door", 1.0, 7.0))
    expected = (
        b"veriot.reading.v1\n"
        + struct.pack(">H", len(DID)) + DID.encode()
        + struct.pack(">Q", 5) + struct.pack(">H", 2)
        + b"\x00\x04temp" + b"\x00\x03Cel" + struct.pack(">dd", 4.5, 1000.25)
        + b"\x00\x04door" + b"\x00\x00" + struct.pack(">dd", 1.0, 7.0)
    )  # fmt: skip
    assert canonical.reading_message(r) == expected


def test_record_order_and_negative_zero_change_the_message() -> None:
    a, b = Record("a", 1.0, 1.0), Record("b", 1.0, 1.0)
    assert canonical.reading_message(reading(a, b)) != canonical.reading_message(reading(b, a))
    zero = canonical.reading_message(reading(Record("a", 0.0, 1.0)))
    assert zero != canonical.reading_message(reading(Record("a", -0.0, 1.0)))


def test_reading_id_is_hex_sha256_of_the_message() -> None:
    message = canonical.reading_message(reading())
    assert canonical.reading_id(message) == hashlib.sha256(message).hexdigest()


def test_batch_message_layout() -> None:
    expected = b"veriot.batch.v1\n" + struct.pack(">H", len(DID)) + DID.encode()
    expected += struct.pack(">I", 3) + ROOT
    assert canonical.batch_message(DID, 3, ROOT) == expected


@pytest.mark.parametrize(("size", "root"), [(0, ROOT), (2**16 + 1, ROOT), (3, ROOT[:31])])
def test_batch_message_refuses_bad_sizes_and_roots(size: int, root: bytes) -> None:
    with pytest.raises(InputError):
        canonical.batch_message(DID, size, root)


def test_reading_leaf_with_own_signature() -> None:
    signed = SignedReading(reading(), signature=SIG)
    message = canonical.reading_message(signed.reading)
    assert canonical.reading_leaf(signed) == b"\x01\x01" + SIG + message
    assert canonical.reading_leaf(signed, message) == b"\x01\x01" + SIG + message


def test_reading_leaf_with_batch_signature() -> None:
    auth = BatchAuth(root=ROOT, size=9, index=4, path=(ROOT,), signature=SIG)
    signed = SignedReading(reading(), batch=auth)
    message = canonical.reading_message(signed.reading)
    expected = b"\x01\x02" + ROOT + struct.pack(">I", 9) + SIG + message
    assert canonical.reading_leaf(signed) == expected


def test_reading_leaf_needs_exactly_one_authentication() -> None:
    auth = BatchAuth(root=ROOT, size=1, index=0, path=(), signature=SIG)
    with pytest.raises(InputError, match="needs a signature"):
        canonical.reading_leaf(SignedReading(reading()))
    with pytest.raises(InputError, match="want one"):
        canonical.reading_leaf(SignedReading(reading(), signature=SIG, batch=auth))


def test_checkpoint_body_layout() -> None:
    body = canonical.checkpoint_body("ab" * 32, 7, ROOT, 1764115200.5)
    expected = b"veriot.checkpoint.v1\n" + b"\x00\x40" + b"ab" * 32
    expected += struct.pack(">Q", 7) + ROOT + struct.pack(">d", 1764115200.5)
    assert body == expected


@pytest.mark.parametrize(
    ("size", "root", "timestamp", "problem"),
    [
        (1, ROOT[:5], 1.0, "32 bytes"),
        (-1, ROOT, 1.0, "tree size"),
        (2**64, ROOT, 1.0, "tree size"),
        (1, ROOT, float("nan"), "not finite"),
    ],
)
def test_checkpoint_body_refuses(size: int, root: bytes, timestamp: float, problem: str) -> None:
    with pytest.raises(InputError, match=problem):
        canonical.checkpoint_body("log", size, root, timestamp)


@pytest.mark.parametrize(
    ("bad", "problem"),
    [
        (reading(Record("a b", 1.0, 1.0)), "not a valid SenML name"),
        (reading(Record("", 1.0, 1.0)), "not a valid SenML name"),
        (reading(Record("a" * 65, 1.0, 1.0)), "at most 64"),
        (reading(Record("a", 1.0, 1.0, "deg C")), "printable ASCII"),
        (reading(Record("a", 1.0, 1.0, "°C")), "printable ASCII"),
        (reading(Record("a", 1.0, 1.0, "x" * 17)), "at most 16"),
        (reading(Record("a", float("nan"), 1.0)), "non-finite value"),
        (reading(Record("a", float("inf"), 1.0)), "non-finite value"),
        (reading(Record("a", 1.0, -0.5)), "invalid time"),
        (reading(Record("a", 1.0, float("inf"))), "invalid time"),
        (Reading(DID, 1, ()), "1 to 256 records; got 0"),
        (Reading(DID, 1, (Record("a", 1.0, 1.0),) * 257), "got 257"),
        (reading(seq=-1), "outside 0 .. 2\\*\\*63-1"),
        (reading(seq=2**63), "outside"),
        (reading(device="d" * 129), "device id is 129 bytes"),
        (reading(device="did:key:\ud800"), "not valid Unicode"),
    ],
)
def test_reading_message_refuses_unencodable_readings(bad: Reading, problem: str) -> None:
    with pytest.raises(InputError, match=problem):
        canonical.reading_message(bad)


def test_parse_reading_message_inverts_reading_message() -> None:
    r = reading(Record("temp", -4.5, 1000.25, "Cel"), Record("x", 1e-300, 0.0), seq=2**63 - 1)
    assert canonical.parse_reading_message(canonical.reading_message(r)) == r


def _message_with(records: bytes, count: int, seq: int = 1, device: bytes = b"d") -> bytes:
    head = b"veriot.reading.v1\n" + struct.pack(">H", len(device)) + device
    return head + struct.pack(">QH", seq, count) + records


def _record(name: bytes = b"a", unit: bytes = b"", value: float = 1.0, time: float = 1.0) -> bytes:
    return (
        struct.pack(">H", len(name)) + name + struct.pack(">H", len(unit)) + unit
        + struct.pack(">dd", value, time)
    )  # fmt: skip


@pytest.mark.parametrize(
    ("message", "problem"),
    [
        (b"veriot.batch.v1\n" + bytes(40), "bad domain prefix"),
        (_message_with(_record(), 2), "truncated"),
        (_message_with(_record() + b"x", 1), "1 trailing bytes"),
        (_message_with(b"", 0), "got 0"),
        (_message_with(_record(name=b"\xff"), 1), "invalid UTF-8"),
        (_message_with(_record(name=b"a b"), 1), "not a valid SenML name"),
        (_message_with(_record(name=b"a" * 65), 1), "record name at offset .* is 65 bytes"),
        (_message_with(_record(value=float("nan")), 1), "non-finite"),
        (_message_with(_record(time=-1.0), 1), "invalid time"),
        (_message_with(_record(), 1, seq=2**63), "outside 0"),
        (_message_with(_record(), 1, device=b"d" * 129), "device id at offset"),
    ],
)
def test_parse_reading_message_refuses_what_reading_message_cannot_produce(
    message: bytes, problem: str
) -> None:
    with pytest.raises(DecodeError, match=problem):
        canonical.parse_reading_message(message)


def test_split_prefix_keeps_the_tails_and_their_lengths() -> None:
    head = canonical.device_prefix(DID)
    messages = [canonical.reading_message(reading(seq=s)) for s in (1, 2, 300)]
    lengths, tails = canonical.split_prefix(head, messages)
    sizes = struct.unpack(">3I", lengths)
    assert sizes == tuple(len(m) - len(head) for m in messages)
    assert tails == b"".join(m[len(head) :] for m in messages)
    assert canonical.split_prefix(head, []) == (b"", b"")


def test_split_prefix_names_the_first_message_of_another_device() -> None:
    other = "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK"
    messages = [canonical.reading_message(reading(seq=s)) for s in (1, 2)]
    messages.insert(1, canonical.reading_message(reading(device=other)))
    with pytest.raises(canonical.MissingPrefix) as raised:
        canonical.split_prefix(canonical.device_prefix(DID), messages)
    assert raised.value.index == 1 and isinstance(raised.value, ValueError)


# --- runs of messages: reading_messages and its C extension ------------------------------

_names = st.sampled_from(["temp", "door", "humidity", "a b", "x" * 65, "t\u00e9"])
_units = st.sampled_from(["", "Cel", "%RH", "deg C", "y" * 17])
_floats = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, -1.5, 1e-300]),
    st.integers(-5, 5),  # a Record built by hand may carry an int
)
_records = st.builds(Record, _names, _floats, _floats, _units)
_readings = st.builds(
    Reading,
    st.sampled_from([DID, DID, DID, "did:key:z6Mkother", "d" * 129]),
    st.one_of(st.integers(0, 2**63 - 1), st.sampled_from([-1, 2**63, 2**64])),
    st.lists(_records, min_size=0, max_size=4).map(tuple),
)


def _one_by_one(readings: list[Reading]) -> list[bytes] | str:
    """The messages through the uncached reference, or its error's text."""
    try:
        return [canonical.reading_message_uncached(r) for r in readings]
    except InputError as exc:
        return str(exc)


def _run(readings: list[Reading]) -> list[bytes] | str:
    try:
        return canonical.reading_messages(readings)
    except InputError as exc:
        return str(exc)


@settings(max_examples=300, deadline=None)
@given(st.lists(_readings, max_size=6))
def test_reading_messages_equal_the_reference_bytes_and_errors(readings: list[Reading]) -> None:
    want = _one_by_one(readings)
    assert _run(readings) == want
    assert _run(readings) == want  # again, with every encoding now remembered


def test_a_run_of_remembered_encodings_is_built_by_the_c_extension() -> None:
    if not canonical.NATIVE_MESSAGES:
        pytest.skip("built without the C extension")
    from veriot.core._canonical import reading_messages as native

    run = [
        reading(Record("temp", 4.5 + i, 1000.25, "Cel"), Record("door", -0.0, 7.0), seq=2**63 - i)
        for i in range(1, 4)
    ]
    want = [canonical.reading_message_uncached(r) for r in run]
    head = want[0][: len(b"veriot.reading.v1\n") + 2 + len(DID)]
    pairs = {("temp", "Cel"): b"\x00\x04temp\x00\x03Cel", ("door", ""): b"\x00\x04door\x00\x00"}
    assert native(head, DID, run, pairs) == want
    # Whatever it was not handed ready or does not expect, it leaves to reading_message.
    assert native(head, DID, run, {("temp", "Cel"): pairs[("temp", "Cel")]}) is None
    assert native(head, DID, [*run, reading(device="did:key:z6Mkother")], pairs) is None
    assert native(head, DID, [reading(Record("temp", 1, 2.0, "Cel"))], pairs) is None
    assert native(head, DID, [reading(Record("temp", 1.0, -0.5, "Cel"))], pairs) is None
    assert native(head, DID, [reading(Record("temp", float("nan"), 1.0, "Cel"))], pairs) is None
    assert native(head, DID, [reading(seq=2**63)], pairs) is None
    assert native(head, DID, [reading(seq=-1)], pairs) is None
    assert native(head, DID, [Reading(DID, 1, ())], pairs) is None
    assert native(head, DID, [], pairs) == []
    with pytest.raises(TypeError):
        native("head", DID, run, pairs)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        native(head, DID, 5, pairs)  # type: ignore[arg-type]


def test_without_the_c_extension_runs_are_built_one_by_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import importlib.util
    import sys
    from pathlib import Path

    monkeypatch.setitem(sys.modules, "veriot.core._canonical", None)  # import fails
    source = Path(canonical.__file__).with_name("canonical.py")
    spec = importlib.util.spec_from_file_location("_canonical_without_c", source)
    assert spec is not None and spec.loader is not None
    fallback = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fallback)
    assert not fallback.NATIVE_MESSAGES
    run = [reading(Record("temp", 1.5 * i, 10.0 + i, "Cel"), seq=i) for i in range(5)]
    want = [canonical.reading_message_uncached(r) for r in run]
    assert fallback.reading_messages(run) == want
    assert fallback.reading_messages(run) == want  # with its encodings remembered
    with pytest.raises(InputError, match="non-finite value"):
        fallback.reading_messages([*run, reading(Record("temp", float("nan"), 1.0))])
