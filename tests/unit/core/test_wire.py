"""The JSON wire format: what decodes, what it decodes to, and every way it refuses."""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import pytest

from veriot.core import canonical, wire
from veriot.core.errors import DecodeError, InputError
from veriot.core.types import BatchAuth, Reading, Record, SignedReading
from veriot.core.wire import MAX_READINGS_PER_REQUEST, CompactBatch

DID = "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp"
SIG = bytes(range(64))
ROOT = bytes(range(32))
SIG64 = base64.b64encode(SIG).decode()
H32 = base64.b64encode(ROOT).decode()


def reading(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "device": DID,
        "seq": 12,
        "records": [{"n": "temp", "u": "Cel", "v": 4.2, "t": 1764115200.5}],
        "sig": SIG64,
    }
    doc.update(changes)
    return {k: v for k, v in doc.items() if v is not ...}


def batch_auth(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"root": H32, "size": 3, "index": 2, "path": [H32, H32], "sig": SIG64}
    doc.update(changes)
    return {k: v for k, v in doc.items() if v is not ...}


def compact(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "device": DID,
        "sig": SIG64,
        "readings": [
            {"seq": 1, "records": [{"n": "temp", "v": 1.5, "t": 10.0}]},
            {"seq": 2, "records": [{"n": "temp", "v": 2, "t": 20}]},
        ],
    }
    doc.update(changes)
    return doc


def body(doc: object) -> bytes:
    return json.dumps(doc).encode()


def decode_error(doc: object | bytes) -> str:
    raw = doc if isinstance(doc, bytes) else body(doc)
    with pytest.raises(DecodeError) as info:
        wire.decode_request(raw)
    return str(info.value)


# --- what decodes ----------------------------------------------------------------------


def test_a_signed_reading_decodes_to_the_core_types() -> None:
    decoded = wire.decode_request(body({"readings": [reading()]}))
    assert decoded.readings == [
        SignedReading(
            reading=Reading(DID, 12, (Record("temp", 4.2, 1764115200.5, "Cel"),)),
            signature=SIG,
        )
    ]
    assert decoded.batches == [] and decoded.count == 1


def test_unit_is_optional_and_integers_are_numbers() -> None:
    doc = reading(records=[{"n": "door", "v": 1, "t": 1764115200}])
    (signed,) = wire.decode_request(body({"readings": [doc]})).readings
    (record,) = signed.reading.records
    assert record == Record("door", 1.0, 1764115200.0, "")
    assert type(record.value) is float and type(record.time) is float


def test_a_batch_authenticated_reading_decodes_with_its_path() -> None:
    doc = reading(sig=..., batch=batch_auth())
    (signed,) = wire.decode_request(body({"readings": [doc]})).readings
    assert signed.signature is None
    assert signed.batch == BatchAuth(root=ROOT, size=3, index=2, path=(ROOT, ROOT), signature=SIG)


def test_a_compact_batch_decodes_without_hashing() -> None:
    decoded = wire.decode_request(body({"batches": [compact()]}))
    assert decoded.readings == []
    assert decoded.batches == [
        CompactBatch(
            device=DID,
            signature=SIG,
            readings=(
                Reading(DID, 1, (Record("temp", 1.5, 10.0),)),
                Reading(DID, 2, (Record("temp", 2.0, 20.0),)),
            ),
        )
    ]
    assert decoded.count == 2


def test_readings_and_batches_together() -> None:
    decoded = wire.decode_request(body({"readings": [reading()], "batches": [compact()]}))
    assert (len(decoded.readings), len(decoded.batches), decoded.count) == (1, 1, 3)


def test_decode_reading_takes_bytes_text_or_a_parsed_object() -> None:
    expected = wire.decode_request(body({"readings": [reading()]})).readings[0]
    assert wire.decode_reading(body(reading())) == expected
    assert wire.decode_reading(json.dumps(reading())) == expected
    assert wire.decode_reading(reading()) == expected


def test_decoded_values_behave_like_normally_built_ones() -> None:
    (signed,) = wire.decode_request(body({"readings": [reading()]})).readings
    normal = SignedReading(Reading(DID, 12, (Record("temp", 4.2, 1764115200.5, "Cel"),)), SIG)
    assert hash(signed) == hash(normal) and signed == normal
    assert canonical.reading_message(signed.reading) == canonical.reading_message(normal.reading)
    with pytest.raises(AttributeError):
        signed.reading.seq = 13  # type: ignore[misc]


# --- encoding --------------------------------------------------------------------------


def test_encode_then_decode_is_the_identity() -> None:
    own = SignedReading(
        Reading(DID, 7, (Record("a", -0.0, 0.0), Record("b", 1e300, 5.5, "W"))), SIG
    )
    batched = SignedReading(
        Reading(DID, 8, (Record("a", 3.0, 1.0),)),
        batch=BatchAuth(root=ROOT, size=1, index=0, path=(), signature=SIG),
    )
    batch = CompactBatch(DID, SIG, (Reading(DID, 9, (Record("a", 0.1, 2.0, "%RH"),)),))
    decoded = wire.decode_request(wire.encode_request([own, batched], [batch]))
    assert decoded.readings == [own, batched] and decoded.batches == [batch]
    assert wire.decode_reading(wire.encode_reading(own)) == own


def test_encode_reading_leaves_out_an_empty_unit_and_uses_padded_base64() -> None:
    own = SignedReading(Reading(DID, 7, (Record("a", 1.0, 2.0),)), SIG)
    assert wire.encode_reading(own) == {
        "device": DID,
        "seq": 7,
        "records": [{"n": "a", "v": 1.0, "t": 2.0}],
        "sig": SIG64,
    }
    assert SIG64.endswith("==")


def test_encode_request_leaves_out_empty_keys() -> None:
    own = SignedReading(Reading(DID, 7, (Record("a", 1.0, 2.0),)), SIG)
    assert set(json.loads(wire.encode_request([own]))) == {"readings"}


def test_encode_refuses_a_reading_with_no_or_two_authentications() -> None:
    r = Reading(DID, 7, (Record("a", 1.0, 2.0),))
    auth = BatchAuth(root=ROOT, size=1, index=0, path=(), signature=SIG)
    for bad in (SignedReading(r), SignedReading(r, SIG, auth)):
        with pytest.raises(InputError, match="exactly one of signature or batch"):
            wire.encode_reading(bad)


# --- what is refused -------------------------------------------------------------------

MALFORMED: list[tuple[str, object, str]] = [
    # (case, request body, expected fragment of the error: the path and the problem)
    ("empty object", {}, "at least one reading; got none - at `$`"),
    ("empty lists", {"readings": [], "batches": []}, "at least one reading"),
    ("not an object", [reading()], "Expected `object`, got `array` - at `$`"),
    ("unknown top-level key", {"readings": [reading()], "extra": 1}, "unknown field `extra`"),
    ("unknown reading key", {"readings": [reading(x=1)]}, "unknown field `x` - at `$.readings[0]`"),
    (
        "unknown record key",
        {"readings": [reading(records=[{"n": "a", "v": 1, "t": 1, "bn": "x"}])]},
        "unknown field `bn` - at `$.readings[0].records[0]`",
    ),
    ("missing device", {"readings": [reading(device=...)]}, "missing required field `device`"),
    ("missing seq", {"readings": [reading(seq=...)]}, "missing required field `seq`"),
    ("missing records", {"readings": [reading(records=...)]}, "missing required field `records`"),
    (
        "missing value",
        {"readings": [reading(records=[{"n": "a", "t": 1}])]},
        "missing required field `v` - at `$.readings[0].records[0]`",
    ),
    (
        "missing time",
        {"readings": [reading(records=[{"n": "a", "v": 1}])]},
        "missing required field `t`",
    ),
    (
        "missing name",
        {"readings": [reading(records=[{"v": 1, "t": 1}])]},
        "missing required field `n`",
    ),
    (
        "seq as a string",
        {"readings": [reading(seq="12")]},
        "Expected `int`, got `str` - at `$.readings[0].seq`",
    ),
    ("seq as a float", {"readings": [reading(seq=12.0)]}, "Expected `int`, got `float`"),
    (
        "seq negative",
        {"readings": [reading(seq=-1)]},
        "Expected `int` >= 0 - at `$.readings[0].seq`",
    ),
    ("seq 2**63", {"readings": [reading(seq=2**63)]}, "at `$.readings[0].seq`"),
    ("seq a boolean", {"readings": [reading(seq=True)]}, "got `bool`"),
    (
        "value as a string",
        {"readings": [reading(records=[{"n": "a", "v": "1", "t": 1}])]},
        "Expected `float`, got `str` - at `$.readings[0].records[0].v`",
    ),
    (
        "value null",
        {"readings": [reading(records=[{"n": "a", "v": None, "t": 1}])]},
        "got `null` - at `$.readings[0].records[0].v`",
    ),
    (
        "negative time",
        {"readings": [reading(records=[{"n": "a", "v": 1, "t": -1}])]},
        "Expected `float` >= 0.0 - at `$.readings[0].records[0].t`",
    ),
    (
        "empty records",
        {"readings": [reading(records=[])]},
        "length >= 1 - at `$.readings[0].records`",
    ),
    (
        "too many records",
        {"readings": [reading(records=[{"n": "a", "v": 1, "t": 1}] * 257)]},
        "length <= 256 - at `$.readings[0].records`",
    ),
    (
        "records not a list",
        {"readings": [reading(records={"n": "a", "v": 1, "t": 1})]},
        "Expected `array`, got `object` - at `$.readings[0].records`",
    ),
    (
        "name starting with a dash",
        {"readings": [reading(records=[{"n": "-a", "v": 1, "t": 1}])]},
        "'-a' is not a valid SenML name (RFC 8428 section 4.5.1) - at `$.readings[0].records[0].n`",
    ),
    (
        "name with a space",
        {"readings": [reading(records=[{"n": "a", "v": 1, "t": 1}, {"n": "a b", "v": 1, "t": 1}])]},
        "at `$.readings[0].records[1].n`",
    ),
    (
        "empty name",
        {"readings": [reading(records=[{"n": "", "v": 1, "t": 1}])]},
        "at `$.readings[0].records[0].n`",
    ),
    (
        "name too long",
        {"readings": [reading(records=[{"n": "a" * 65, "v": 1, "t": 1}])]},
        "length <= 64 - at `$.readings[0].records[0].n`",
    ),
    (
        "name not ASCII",
        {"readings": [reading(records=[{"n": "tempé", "v": 1, "t": 1}])]},
        "not a valid SenML name",
    ),
    (
        "unit with a space",
        {"readings": [reading(records=[{"n": "a", "u": "deg C", "v": 1, "t": 1}])]},
        "unit 'deg C' is not printable ASCII without spaces - at `$.readings[0].records[0].u`",
    ),
    (
        "unit not ASCII",
        {"readings": [reading(records=[{"n": "a", "u": "°C", "v": 1, "t": 1}])]},
        "at `$.readings[0].records[0].u`",
    ),
    (
        "unit too long",
        {"readings": [reading(records=[{"n": "a", "u": "x" * 17, "v": 1, "t": 1}])]},
        "length <= 16 - at `$.readings[0].records[0].u`",
    ),
    (
        "device not a did:key",
        {"readings": [reading(device="sensor-1")]},
        "'sensor-1' is not a did:key identifier - at `$.readings[0].device`",
    ),
    (
        "device with a bad base58 character",
        {"readings": [reading(device=DID[:-1] + "0")]},
        "not a did:key",
    ),
    (
        "device too long",
        {"readings": [reading(device="did:key:z" + "a" * 200)]},
        "length <= 128 - at `$.readings[0].device`",
    ),
    ("device empty", {"readings": [reading(device="")]}, "length >= 1"),
    (
        "neither sig nor batch",
        {"readings": [reading(sig=...)]},
        "needs `sig` or `batch`; got neither - at `$.readings[0]`",
    ),
    (
        "both sig and batch",
        {"readings": [reading(batch=batch_auth())]},
        "got both - at `$.readings[0]`",
    ),
    ("sig null", {"readings": [reading(sig=None)]}, "got `null` - at `$.readings[0].sig`"),
    (
        "sig not base64",
        {"readings": [reading(sig="!" * 86 + "==")]},
        "Invalid base64 encoded string - at `$.readings[0].sig`",
    ),
    (
        "sig unpadded",
        {"readings": [reading(sig=SIG64.rstrip("="))]},
        "Invalid base64 encoded string - at `$.readings[0].sig`",
    ),
    (
        "sig url-safe alphabet",
        {"readings": [reading(sig=base64.urlsafe_b64encode(b"\xff" * 64).decode())]},
        "Invalid base64",
    ),
    (
        "sig 63 bytes",
        {"readings": [reading(sig=base64.b64encode(bytes(63)).decode())]},
        "length >= 64 - at `$.readings[0].sig`",
    ),
    (
        "sig 65 bytes",
        {"readings": [reading(sig=base64.b64encode(bytes(65)).decode())]},
        "length <= 64",
    ),
    (
        "root 31 bytes",
        {
            "readings": [
                reading(sig=..., batch=batch_auth(root=base64.b64encode(bytes(31)).decode()))
            ]
        },
        "length >= 32 - at `$.readings[0].batch.root`",
    ),
    (
        "path hash 33 bytes",
        {
            "readings": [
                reading(sig=..., batch=batch_auth(path=[H32, base64.b64encode(bytes(33)).decode()]))
            ]
        },
        "length <= 32 - at `$.readings[0].batch.path[1]`",
    ),
    (
        "path too long",
        {"readings": [reading(sig=..., batch=batch_auth(path=[H32] * 17))]},
        "length <= 16 - at `$.readings[0].batch.path`",
    ),
    (
        "batch sig wrong length",
        {"readings": [reading(sig=..., batch=batch_auth(sig=H32))]},
        "at `$.readings[0].batch.sig`",
    ),
    (
        "batch size zero",
        {"readings": [reading(sig=..., batch=batch_auth(size=0, index=0))]},
        "Expected `int` >= 1 - at `$.readings[0].batch.size`",
    ),
    (
        "batch size too large",
        {"readings": [reading(sig=..., batch=batch_auth(size=2**16 + 1))]},
        "at `$.readings[0].batch.size`",
    ),
    (
        "batch index not below size",
        {"readings": [reading(sig=..., batch=batch_auth(index=3))]},
        "index 3 is not below the batch size 3 - at `$.readings[0].batch.index`",
    ),
    (
        "batch index negative",
        {"readings": [reading(sig=..., batch=batch_auth(index=-1))]},
        "at `$.readings[0].batch.index`",
    ),
    (
        "batch missing root",
        {"readings": [reading(sig=..., batch=batch_auth(root=...))]},
        "missing required field `root` - at `$.readings[0].batch`",
    ),
    (
        "batch unknown key",
        {"readings": [reading(sig=..., batch=batch_auth(extra=1))]},
        "unknown field `extra` - at `$.readings[0].batch`",
    ),
    (
        "compact batch without readings",
        {"batches": [compact(readings=[])]},
        "length >= 1 - at `$.batches[0].readings`",
    ),
    (
        "compact batch missing sig",
        {"batches": [{"device": DID, "readings": compact()["readings"]}]},
        "missing required field `sig` - at `$.batches[0]`",
    ),
    (
        "compact batch bad device",
        {"batches": [compact(device="did:web:example.com")]},
        "not a did:key identifier - at `$.batches[0].device`",
    ),
    (
        "compact batch reading with a sig",
        {
            "batches": [
                compact(
                    readings=[{"seq": 1, "records": [{"n": "a", "v": 1, "t": 1}], "sig": SIG64}]
                )
            ]
        },
        "unknown field `sig` - at `$.batches[0].readings[0]`",
    ),
    (
        "compact batch reading with a device",
        {
            "batches": [
                compact(
                    readings=[{"device": DID, "seq": 1, "records": [{"n": "a", "v": 1, "t": 1}]}]
                )
            ]
        },
        "unknown field `device`",
    ),
    (
        "compact batch bad name",
        {
            "batches": [
                compact(
                    readings=[
                        *compact()["readings"],
                        {
                            "seq": 3,
                            "records": [
                                {"n": "ok", "v": 1, "t": 1},
                                {"n": "not ok", "v": 1, "t": 1},
                            ],
                        },
                    ]
                )
            ]
        },
        "at `$.batches[0].readings[2].records[1].n`",
    ),
    ("second reading bad", {"readings": [reading(), reading(seq=-5)]}, "at `$.readings[1].seq`"),
    ("second batch bad", {"batches": [compact(), compact(device="x")]}, "at `$.batches[1].device`"),
]


@pytest.mark.parametrize(("case", "doc", "expected"), MALFORMED, ids=[c[0] for c in MALFORMED])
def test_malformed_requests_are_refused_naming_the_field(
    case: str, doc: object, expected: str
) -> None:
    message = decode_error(doc)
    assert expected in message, f"{case}: {message}"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"", "Input data was truncated"),
        (b"{", "truncated"),
        (b"not json", "JSON is malformed"),
        (b'{"readings": [}', "JSON is malformed"),
        (b'{"readings": [' + body(reading()) + b"]} trailing", "trailing characters"),
        (body({"readings": [reading()]}).replace(b"4.2", b"NaN"), "JSON is malformed"),
        (body({"readings": [reading()]}).replace(b"4.2", b"Infinity"), "JSON is malformed"),
        (
            body({"readings": [reading()]}).replace(b"4.2", b"1e400"),
            "Number out of range - at `$.readings[0].records[0].v`",
        ),
        (
            body({"readings": [reading()]}).replace(b"1764115200.5", b"-1e999"),
            "at `$.readings[0].records[0].t`",
        ),
        (b'{"readings": [' + body(reading()) + b"]}\xff", "malformed"),
    ],
)
def test_malformed_json_is_refused(raw: bytes, expected: str) -> None:
    assert expected in decode_error(raw)


def test_a_lone_surrogate_is_refused() -> None:
    raw = body({"readings": [reading()]}).replace(b'"temp"', b'"\\ud800"')
    assert "surrogate" in decode_error(raw)


def test_the_request_limit_counts_readings_in_batches_too() -> None:
    loose = [reading(seq=i) for i in range(10)]
    batch_readings = [
        {"seq": i, "records": [{"n": "a", "v": 1, "t": 1}]}
        for i in range(MAX_READINGS_PER_REQUEST - 10)
    ]
    ok = {"readings": loose, "batches": [compact(readings=batch_readings)]}
    assert wire.decode_request(body(ok)).count == MAX_READINGS_PER_REQUEST
    over = copy.deepcopy(ok)
    over["readings"].append(reading(seq=99))
    assert (
        f"at most {MAX_READINGS_PER_REQUEST} readings; got {MAX_READINGS_PER_REQUEST + 1}"
        in decode_error(over)
    )


def test_the_request_limit_on_loose_readings_is_checked_while_decoding() -> None:
    doc = {"readings": [reading(seq=i) for i in range(MAX_READINGS_PER_REQUEST + 1)]}
    assert f"length <= {MAX_READINGS_PER_REQUEST} - at `$.readings`" in decode_error(doc)


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        (reading(seq="1"), "Expected `int`, got `str` - at `$.seq`"),
        (reading(sig=...), "got neither - at `$`"),
        (reading(records=[{"n": "a b", "v": 1, "t": 1}]), "at `$.records[0].n`"),
        (reading(extra=True), "unknown field `extra` - at `$`"),
        (reading(sig=..., batch=batch_auth(index=7)), "at `$.batch.index`"),
    ],
)
def test_decode_reading_refuses_with_paths_from_the_reading(
    doc: dict[str, Any], expected: str
) -> None:
    for form in (doc, body(doc)):
        with pytest.raises(DecodeError) as info:
            wire.decode_reading(form)
        assert expected in str(info.value)


def test_a_valid_string_stays_valid_after_an_invalid_one_is_refused() -> None:
    # The caches of known-good names must never learn a bad one.
    decode_error({"readings": [reading(records=[{"n": "bad name", "v": 1, "t": 1}])]})
    decode_error({"readings": [reading(records=[{"n": "bad name", "v": 1, "t": 1}])]})
    assert wire.decode_request(body({"readings": [reading()]})).count == 1


def test_decode_errors_are_input_errors() -> None:
    with pytest.raises(InputError):
        wire.decode_request(b"[]")
    with pytest.raises(ValueError):
        wire.decode_request(b"[]")
