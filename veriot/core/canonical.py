"""The canonical byte encodings that signatures and the log commit to.

Specified in docs/wire-format.md (with test vectors in tests/vectors/wire/) so that a
device in C can produce the same bytes. Every integer is big-endian; every string is
UTF-8 with a 2-byte length prefix (`str16`); floats are IEEE 754 binary64.

    reading message = "veriot.reading.v1\\n" str16(device) u64(seq) u16(n)
                      n * ( str16(name) str16(unit) f64(value) f64(time) )
    batch message   = "veriot.batch.v1\\n" str16(device) u32(size) root[32]
    reading leaf    = u8(1) auth message
        auth        = u8(1) signature[64]                         (own signature)
                    | u8(2) root[32] u32(size) signature[64]       (batch signature)
    checkpoint body = "veriot.checkpoint.v1\\n" str16(log_id) u64(size) root[32] f64(timestamp)
"""

from __future__ import annotations

import hashlib
import math
import re
import struct
from collections.abc import Iterable, Sequence
from typing import Final

from veriot.core.errors import DecodeError, InputError
from veriot.core.types import (
    MAX_NAME_BYTES,
    MAX_UNIT_BYTES,
    EntryKind,
    Reading,
    Record,
    SignedReading,
)

READING_DOMAIN: Final = b"veriot.reading.v1\n"
BATCH_DOMAIN: Final = b"veriot.batch.v1\n"
CHECKPOINT_DOMAIN: Final = b"veriot.checkpoint.v1\n"

AUTH_SIGNATURE: Final = 1
AUTH_BATCH: Final = 2

MAX_RECORDS: Final = 256
MAX_DEVICE_BYTES: Final = 128
MAX_BATCH_SIZE: Final = 2**16
SIGNATURE_BYTES: Final = 64
HASH_BYTES: Final = 32

NAME_PATTERN: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9\-:./_]*\Z")
"""SenML names (RFC 8428 section 4.5.1): start alphanumeric, then A-Z a-z 0-9 - : . / _"""

UNIT_PATTERN: Final = re.compile(r"[!-~]*\Z")
"""SenML units (RFC 8428 section 12.1 and the secondary registry) are printable ASCII
without spaces ("Cel", "%RH", "m/s2"); keeping them ASCII makes their byte length their
character count, so a device in C can check the limit without a UTF-8 library."""

_U16: Final = struct.Struct(">H")
_U32: Final = struct.Struct(">I")
_U64: Final = struct.Struct(">Q")
_F64X2: Final = struct.Struct(">dd")
_F64: Final = struct.Struct(">d")


def _str16(value: str, limit: int, what: str) -> bytes:
    try:
        raw = value.encode()
    except UnicodeEncodeError as exc:  # lone surrogates, which JSON can carry
        raise InputError(f"{what} {value!r} is not valid Unicode text") from exc
    if len(raw) > limit:
        raise InputError(f"{what} is {len(raw)} bytes; at most {limit} allowed")
    return _U16.pack(len(raw)) + raw


def check_record(record: Record) -> None:
    """Raises InputError unless the record can be encoded canonically."""
    if not NAME_PATTERN.match(record.name):
        raise InputError(f"record name {record.name!r} is not a valid SenML name")
    if len(record.name) > MAX_NAME_BYTES:  # ASCII by the pattern, so characters are bytes
        raise InputError(f"record name is {len(record.name)} bytes; at most {MAX_NAME_BYTES}")
    if not UNIT_PATTERN.match(record.unit):
        raise InputError(
            f"record {record.name!r} has unit {record.unit!r}; want printable ASCII, no spaces"
        )
    if len(record.unit) > MAX_UNIT_BYTES:
        raise InputError(f"record unit is {len(record.unit)} bytes; at most {MAX_UNIT_BYTES}")
    if not math.isfinite(record.value):
        raise InputError(f"record {record.name!r} has a non-finite value")
    if not math.isfinite(record.time) or record.time < 0:
        raise InputError(f"record {record.name!r} has an invalid time {record.time!r}")


def reading_message_uncached(reading: Reading) -> bytes:
    """reading_message written straight from the layout, checking every field each time
    (the reference that the cached reading_message is tested against)."""
    records = reading.records
    if not 1 <= len(records) <= MAX_RECORDS:
        raise InputError(f"a reading has 1 to {MAX_RECORDS} records; got {len(records)}")
    if not 0 <= reading.seq < 2**63:
        raise InputError(f"sequence number {reading.seq} is outside 0 .. 2**63-1")
    parts = [
        READING_DOMAIN,
        _str16(reading.device, MAX_DEVICE_BYTES, "device id"),
        _U64.pack(reading.seq),
        _U16.pack(len(records)),
    ]
    for record in records:
        check_record(record)
        parts.append(_str16(record.name, MAX_NAME_BYTES, "record name"))
        parts.append(_str16(record.unit, MAX_UNIT_BYTES, "record unit"))
        parts.append(_F64X2.pack(record.value, record.time))
    return b"".join(parts)


_SEQ_COUNT: Final = struct.Struct(">QH")
_HEAD_CACHE_LIMIT: Final = 4096
_device_heads: Final[dict[str, bytes]] = {}
_record_heads: Final[dict[tuple[str, str], bytes]] = {}
_PROBE: Final = Record("a", 0.0, 0.0)
_PROBE_TAIL: Final = 8 + 2 + (2 + 1 + 2 + 16)  # u64 seq, u16 count, the probe record


def reading_message(reading: Reading) -> bytes:
    """The bytes a device signs for one reading. Raises InputError for unencodable input.

    On the hot ingest path: the encodings of device ids and (name, unit) pairs, which
    repeat from reading to reading, are checked and encoded once by
    reading_message_uncached and remembered; anything unusual is handed to it whole, so
    the bytes and the errors are always the same as its own.
    """
    records = reading.records
    if not (1 <= len(records) <= MAX_RECORDS and 0 <= reading.seq < 1 << 63):
        return reading_message_uncached(reading)
    head = _device_heads.get(reading.device)
    if head is None:
        try:
            probe = reading_message_uncached(Reading(reading.device, 0, (_PROBE,)))
        except InputError:
            return reading_message_uncached(reading)
        if len(_device_heads) >= _HEAD_CACHE_LIMIT:
            _device_heads.clear()
        head = _device_heads[reading.device] = probe[:-_PROBE_TAIL]
    parts = [head, _SEQ_COUNT.pack(reading.seq, len(records))]
    for record in records:
        key = (record.name, record.unit)
        pair = _record_heads.get(key)
        if pair is None:
            try:
                probe = reading_message_uncached(
                    Reading("", 0, (Record(record.name, 0.0, 0.0, record.unit),))
                )
            except InputError:
                return reading_message_uncached(reading)
            if len(_record_heads) >= _HEAD_CACHE_LIMIT:
                _record_heads.clear()
            pair = _record_heads[key] = probe[len(READING_DOMAIN) + 2 + 10 : -16]
        value, time = record.value, record.time
        # Not finite is NaN or infinite (compiled, isnan and isinf are machine code).
        bad_value = math.isnan(value) or math.isinf(value)
        if bad_value or math.isnan(time) or math.isinf(time) or time < 0:
            return reading_message_uncached(reading)
        parts.append(pair)
        parts.append(_F64X2.pack(value, time))
    return b"".join(parts)


def _no_native_messages(
    head: bytes, device: str, readings: Sequence[Reading], pairs: dict[tuple[str, str], bytes]
) -> list[bytes] | None:
    return None


try:
    from veriot.core._canonical import reading_messages as _native_messages
except ImportError:  # built without the C extension: reading_messages builds them one by one
    _native_messages = _no_native_messages

NATIVE_MESSAGES: Final = _native_messages is not _no_native_messages
"""True when the C extension (veriot/core/_canonical.c) builds runs of messages."""


def reading_messages(readings: Sequence[Reading]) -> list[bytes]:
    """reading_message of each of `readings`, which are usually one device's (a request's
    or a batch's): the same bytes, and the same InputError for unencodable input.

    Where veriot was built with its C extension, a run of one device whose id and record
    (name, unit) pairs reading_message has already checked and encoded is built in one
    call from those encodings, at about a fifth of the CPU; anything else goes through
    reading_message one by one, which also remembers the encodings for the next run.
    """
    if not readings:
        return []
    device = readings[0].device
    head = _device_heads.get(device)
    if head is not None:
        built = _native_messages(head, device, readings, _record_heads)
        if built is not None:
            return built
    return [reading_message(r) for r in readings]


_PREFIXES: Final[dict[str, bytes]] = {}
_MAX_PREFIXES: Final = 65_536
"""How many devices' prefixes device_prefix remembers (it forgets them all past that)."""


def device_prefix(device: str) -> bytes:
    """The bytes every reading message of `device` starts with: the domain and the device
    id. A device id that no message can hold (not valid Unicode, or too long) gives
    bytes no message starts with: its length field is above MAX_DEVICE_BYTES. Remembered
    per device: the store and the sequencer ask for it once per segment."""
    prefix = _PREFIXES.get(device)
    if prefix is None:
        raw = device.encode(errors="surrogatepass")
        if len(raw) > MAX_DEVICE_BYTES or raw.decode(errors="replace") != device:
            return READING_DOMAIN + _U16.pack(0xFFFF)
        prefix = READING_DOMAIN + _U16.pack(len(raw)) + raw
        if len(_PREFIXES) >= _MAX_PREFIXES:
            _PREFIXES.clear()
        _PREFIXES[device] = prefix
    return prefix


class MissingPrefix(ValueError):
    """Message `index` of a run does not start with the run's prefix (split_prefix)."""

    def __init__(self, index: int) -> None:
        super().__init__(f"message {index} does not start with the run's head")
        self.index = index


def split_prefix(head: bytes, messages: Iterable[bytes]) -> tuple[bytes, bytes]:
    """(the tails' lengths as big-endian u32s, the tails concatenated) of `messages`
    after their common `head` (a device's prefix): how a run of one device's messages is
    kept, in veriot.core.columns.MessageRuns and in a stored segment's body. Raises
    MissingPrefix for the first message that does not start with `head`."""
    cut = len(head)
    tails: list[bytes] = []
    for i, message in enumerate(messages):
        if not message.startswith(head):
            raise MissingPrefix(i)
        tails.append(message[cut:])
    return struct.pack(f">{len(tails)}I", *map(len, tails)), b"".join(tails)


def reading_id(message: bytes) -> str:
    """A reading's id: the hex SHA-256 of its canonical message."""
    return hashlib.sha256(message).hexdigest()


def batch_message(device: str, size: int, root: bytes) -> bytes:
    """The bytes a device signs for a batch of `size` readings whose RFC 9162 root is `root`."""
    if not 1 <= size <= MAX_BATCH_SIZE:
        raise InputError(f"a batch has 1 to {MAX_BATCH_SIZE} readings; got {size}")
    if len(root) != HASH_BYTES:
        raise InputError(f"a batch root is {HASH_BYTES} bytes; got {len(root)}")
    return BATCH_DOMAIN + _str16(device, MAX_DEVICE_BYTES, "device id") + _U32.pack(size) + root


def reading_leaf(signed: SignedReading, message: bytes | None = None) -> bytes:
    """The log leaf data of an accepted reading. `message` may be passed when already built."""
    if message is None:
        message = reading_message(signed.reading)
    if signed.batch is not None and signed.signature is not None:
        raise InputError("a signed reading has a signature and a batch authentication; want one")
    if signed.batch is not None:
        b = signed.batch
        return batch_leaf_prefix(b.root, b.size, b.signature) + message
    if signed.signature is not None:
        return signature_leaf_prefix(signed.signature) + message
    raise InputError("a signed reading needs a signature or a batch authentication")


def signature_leaf_prefix(signature: bytes) -> bytes:
    """What the log leaf of a reading signed on its own starts with: its leaf is this
    prefix followed by its reading message (see reading_leaf)."""
    return bytes((EntryKind.READING, AUTH_SIGNATURE)) + signature


def batch_leaf_prefix(root: bytes, size: int, signature: bytes) -> bytes:
    """What the log leaf of every reading of one batch starts with: its leaf is this
    prefix followed by its reading message (see reading_leaf)."""
    return bytes((EntryKind.READING, AUTH_BATCH)) + root + _U32.pack(size) + signature


def checkpoint_body(log_id: str, size: int, root: bytes, timestamp: float) -> bytes:
    """The bytes the log key signs for a checkpoint."""
    if len(root) != HASH_BYTES:
        raise InputError(f"a root is {HASH_BYTES} bytes; got {len(root)}")
    if not 0 <= size < 2**64:
        raise InputError(f"tree size {size} is outside 0 .. 2**64-1")
    if not math.isfinite(timestamp):
        raise InputError(f"checkpoint timestamp {timestamp!r} is not finite")
    return (
        CHECKPOINT_DOMAIN
        + _str16(log_id, MAX_DEVICE_BYTES, "log id")
        + _U64.pack(size)
        + root
        + _F64.pack(timestamp)
    )


class _Cursor:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, n: int) -> bytes:
        end = self.pos + n
        if end > len(self.data):
            raise DecodeError(f"truncated: need {n} bytes at offset {self.pos}")
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk

    def str16(self, limit: int, what: str) -> str:
        (n,) = _U16.unpack(self.take(2))
        if n > limit:
            raise DecodeError(f"{what} at offset {self.pos - 2} is {n} bytes; at most {limit}")
        try:
            return self.take(n).decode()
        except UnicodeDecodeError as exc:
            raise DecodeError(f"invalid UTF-8 at offset {self.pos - n}") from exc


def message_device(message: bytes) -> str:
    """The device id a reading message starts with (after the domain), read without the
    rest of the message. Raises DecodeError when it does not start as one."""
    c = _Cursor(message)
    if c.take(len(READING_DOMAIN)) != READING_DOMAIN:
        raise DecodeError("not a veriot reading message (bad domain prefix)")
    return c.str16(MAX_DEVICE_BYTES, "device id")


def parse_reading_message(message: bytes) -> Reading:
    """Inverse of reading_message. Raises DecodeError."""
    c = _Cursor(message)
    if c.take(len(READING_DOMAIN)) != READING_DOMAIN:
        raise DecodeError("not a veriot reading message (bad domain prefix)")
    device = c.str16(MAX_DEVICE_BYTES, "device id")
    (seq,) = _U64.unpack(c.take(8))
    (n,) = _U16.unpack(c.take(2))
    if not 1 <= n <= MAX_RECORDS:
        raise DecodeError(f"a reading has 1 to {MAX_RECORDS} records; got {n}")
    records = []
    for _ in range(n):
        name = c.str16(MAX_NAME_BYTES, "record name")
        unit = c.str16(MAX_UNIT_BYTES, "record unit")
        value, time = _F64X2.unpack(c.take(16))
        record = Record(name=name, value=value, time=time, unit=unit)
        try:
            check_record(record)
        except InputError as exc:
            raise DecodeError(str(exc)) from exc
        records.append(record)
    if c.pos != len(message):
        raise DecodeError(f"{len(message) - c.pos} trailing bytes after the reading")
    if seq >= 2**63:
        raise DecodeError(f"sequence number {seq} is outside 0 .. 2**63-1")
    return Reading(device=device, seq=seq, records=tuple(records))
