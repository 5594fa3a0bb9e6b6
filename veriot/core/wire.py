"""The JSON wire format devices send, decoded strictly into the core types.

Specified in docs/wire-format.md. Decoding is on the hot ingest path, so the JSON is
decoded by msgspec straight into the Structs of veriot.core.wire_shapes (types, lengths
and ranges checked in C), then the few rules msgspec cannot express are checked in one
pass that also builds the core values. Every error is a DecodeError whose message names
the field path (`$.readings[3].seq`) and the problem.

    reading        = {"device": did, "seq": u63, "records": [record, ...],
                      "sig": b64(64)  |  "batch": {"root": b64(32), "size": n, "index": i,
                                                   "path": [b64(32), ...], "sig": b64(64)}}
    record         = {"n": name, "u": unit (optional), "v": number, "t": number >= 0}
    request        = {"readings": [reading, ...], "batches": [compact batch, ...]}
    compact batch  = {"device": did, "sig": b64(64), "readings": [{"seq": u63, "records": [...]}]}
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import msgspec
from msgspec import UNSET

from veriot.core.canonical import NAME_PATTERN, UNIT_PATTERN
from veriot.core.errors import DecodeError, InputError
from veriot.core.types import BatchAuth, Reading, Record, SignedReading, build_signed
from veriot.core.wire_shapes import (
    MAX_PATH_LENGTH,
    MAX_READINGS_PER_REQUEST,
    WireBatchAuth,
    WireBatchReading,
    WireCompactBatch,
    WireReading,
    WireRequest,
)

__all__ = [
    "DID_PATTERN",
    "MAX_PATH_LENGTH",
    "MAX_READINGS_PER_REQUEST",
    "CompactBatch",
    "DecodedRequest",
    "decode_reading",
    "decode_request",
    "encode_batch",
    "encode_reading",
    "encode_request",
]

DID_PATTERN: Final = re.compile(r"did:key:z[1-9A-HJ-NP-Za-km-z]+\Z")
"""The shape of a did:key (base58btc alphabet); identity.did checks the key inside."""


@dataclass(frozen=True, slots=True)
class CompactBatch:
    """A batch as a device sends it: one signature over `canonical.batch_message(device,
    len(readings), root)`, where root is the RFC 9162 root over the leaf hashes of the
    readings' canonical messages, in order. Decoding does not check the signature."""

    device: str
    signature: bytes
    readings: tuple[Reading, ...]


@dataclass(frozen=True, slots=True)
class DecodedRequest:
    """A decoded `POST /v1/readings` body: at least one reading in all."""

    readings: list[SignedReading]
    batches: list[CompactBatch]

    @property
    def count(self) -> int:
        """Readings in the request, those inside batches included."""
        return len(self.readings) + sum(len(b.readings) for b in self.batches)


_request_decoder: Final = msgspec.json.Decoder(WireRequest)
_reading_decoder: Final = msgspec.json.Decoder(WireReading)
_encoder: Final = msgspec.json.Encoder()


# --- the checks msgspec cannot express -------------------------------------------------
# Names, units and device ids repeat across readings, so each distinct valid string is
# checked by regex once and then found in a set. The sets are bounded so a sender cannot
# grow them without limit; past the bound, strings are simply checked every time.
# The happy path builds no path strings: a failed check raises _Invalid with the path
# below the reading, and the caller, which knows the reading's index, completes it.

_CACHE_LIMIT: Final = 65_536
_valid_names: Final[set[str]] = set()
_valid_units: Final[set[str]] = {""}
_valid_devices: Final[set[str]] = set()


class _Invalid(Exception):
    def __init__(self, problem: str, where: str) -> None:
        super().__init__(problem)
        self.problem, self.where = problem, where


def _remember(cache: set[str], value: str) -> None:
    if len(cache) < _CACHE_LIMIT:
        cache.add(value)


def _check_device(device: str) -> None:
    if device in _valid_devices:
        return
    if not DID_PATTERN.match(device):
        raise _Invalid(f"{device!r} is not a did:key identifier", ".device")
    _remember(_valid_devices, device)


def _check_records(records: tuple[Record, ...], where: str) -> None:
    for position, r in enumerate(records):
        name, unit = r.name, r.unit
        if name not in _valid_names:
            if not NAME_PATTERN.match(name):
                raise _Invalid(
                    f"{name!r} is not a valid SenML name (RFC 8428 section 4.5.1)",
                    f"{where}.records[{position}].n",
                )
            _remember(_valid_names, name)
        if unit not in _valid_units:
            if not UNIT_PATTERN.match(unit):
                raise _Invalid(
                    f"unit {unit!r} is not printable ASCII without spaces",
                    f"{where}.records[{position}].u",
                )
            _remember(_valid_units, unit)


def _convert_batch(b: WireBatchAuth) -> BatchAuth:
    if b.index >= b.size:
        raise _Invalid(f"index {b.index} is not below the batch size {b.size}", ".batch.index")
    return BatchAuth(root=b.root, size=b.size, index=b.index, path=tuple(b.path), signature=b.sig)


def _convert_reading(w: WireReading) -> SignedReading:
    _check_device(w.device)
    records = w.records
    _check_records(records, "")
    sig, batch = w.sig, w.batch
    if sig is UNSET:
        if batch is UNSET:
            raise _Invalid("a reading needs `sig` or `batch`; got neither", "")
        return build_signed(Reading(w.device, w.seq, records), None, _convert_batch(batch))
    if batch is not UNSET:
        raise _Invalid("a reading has one of `sig` or `batch`; got both", "")
    return build_signed(Reading(w.device, w.seq, records), sig, None)


def _convert_compact(w: WireCompactBatch) -> CompactBatch:
    device = w.device
    _check_device(device)
    readings: list[Reading] = []
    for r in w.readings:
        records = r.records
        _check_records(records, f".readings[{len(readings)}]")
        readings.append(Reading(device, r.seq, records))
    return CompactBatch(device=device, signature=w.sig, readings=tuple(readings))


def _decode_error(exc: msgspec.MsgspecError) -> DecodeError:
    message = str(exc)
    if isinstance(exc, msgspec.ValidationError) and " - at `" not in message:
        message += " - at `$`"  # msgspec leaves the path out for the top level
    return DecodeError(message)


# --- public functions ------------------------------------------------------------------


def decode_request(body: bytes) -> DecodedRequest:
    """Decodes a `POST /v1/readings` body. Raises DecodeError naming the first bad field.

    Checks shapes, types, lengths and ranges only; signatures, batch roots and the
    device registry are the ingest layer's to check.
    """
    try:
        request = _request_decoder.decode(body)
    except msgspec.MsgspecError as exc:
        raise _decode_error(exc) from None
    count = len(request.readings) + sum(len(b.readings) for b in request.batches)
    if count == 0:
        raise DecodeError("a request carries at least one reading; got none - at `$`")
    if count > MAX_READINGS_PER_REQUEST:
        raise DecodeError(
            f"a request carries at most {MAX_READINGS_PER_REQUEST} readings; got {count} - at `$`"
        )
    readings: list[SignedReading] = []
    try:
        for w in request.readings:
            readings.append(_convert_reading(w))
    except _Invalid as exc:
        raise DecodeError(f"{exc.problem} - at `$.readings[{len(readings)}]{exc.where}`") from None
    batches: list[CompactBatch] = []
    try:
        for b in request.batches:
            batches.append(_convert_compact(b))
    except _Invalid as exc:
        raise DecodeError(f"{exc.problem} - at `$.batches[{len(batches)}]{exc.where}`") from None
    return DecodedRequest(readings=readings, batches=batches)


def decode_reading(body: bytes | str | Mapping[str, Any]) -> SignedReading:
    """Decodes one reading, from JSON text or from an already parsed JSON object (as an
    MQTT or HTTP framework may hand over). Raises DecodeError naming the bad field."""
    try:
        if isinstance(body, Mapping):
            wire = msgspec.convert(body, WireReading)
        else:
            wire = _reading_decoder.decode(body)
    except msgspec.MsgspecError as exc:
        raise _decode_error(exc) from None
    try:
        return _convert_reading(wire)
    except _Invalid as exc:
        raise DecodeError(f"{exc.problem} - at `${exc.where}`") from None


def _wire_reading(signed: SignedReading) -> WireReading:
    r = signed.reading
    wire = WireReading(device=r.device, seq=r.seq, records=r.records)
    if (signed.signature is None) == (signed.batch is None):
        raise InputError(f"reading {r.device} #{r.seq} needs exactly one of signature or batch")
    if signed.signature is not None:
        wire.sig = signed.signature
    elif signed.batch is not None:
        b = signed.batch
        wire.batch = WireBatchAuth(
            root=b.root, size=b.size, index=b.index, path=list(b.path), sig=b.signature
        )
    return wire


def _wire_compact(batch: CompactBatch) -> WireCompactBatch:
    return WireCompactBatch(
        device=batch.device,
        sig=batch.signature,
        readings=[WireBatchReading(seq=r.seq, records=r.records) for r in batch.readings],
    )


def encode_reading(signed: SignedReading) -> dict[str, Any]:
    """The JSON object of one reading (bytes as base64 strings); `u` is left out when empty."""
    result: dict[str, Any] = msgspec.to_builtins(_wire_reading(signed))
    result["records"] = list(result["records"])  # a JSON array, as it decodes
    return result


def encode_batch(batch: CompactBatch) -> dict[str, Any]:
    """The JSON object of one compact batch."""
    result: dict[str, Any] = msgspec.to_builtins(_wire_compact(batch))
    for reading in result["readings"]:
        reading["records"] = list(reading["records"])  # JSON arrays, as they decode
    return result


def encode_request(
    readings: Iterable[SignedReading] = (), batches: Iterable[CompactBatch] = ()
) -> bytes:
    """The JSON body of `POST /v1/readings`; keys with nothing in them are left out.

    Does not enforce MAX_READINGS_PER_REQUEST: a sender splits larger sets itself.
    """
    request = WireRequest(
        readings=[_wire_reading(s) for s in readings],
        batches=[_wire_compact(b) for b in batches],
    )
    return _encoder.encode(request)
