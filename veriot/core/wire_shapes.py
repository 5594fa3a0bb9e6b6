"""The JSON wire format's shapes as msgspec Structs: decoded in C, with types, lengths and
ranges checked there (see veriot.core.wire, which checks the rest and builds core values).

A module of its own because veriot.core.wire is compiled with mypyc (setup.py), and a
compiled module cannot define Structs: mypyc drops their class keywords
(forbid_unknown_fields, kw_only, gc, ...).
"""

from __future__ import annotations

from typing import Annotated

from msgspec import UNSET, Meta, Struct, UnsetType

from veriot.core.canonical import (
    HASH_BYTES,
    MAX_BATCH_SIZE,
    MAX_DEVICE_BYTES,
    MAX_RECORDS,
    SIGNATURE_BYTES,
)
from veriot.core.types import MAX_SEQ, Record

MAX_READINGS_PER_REQUEST = 10_000
"""Readings in one request body, counting those inside compact batches."""

MAX_PATH_LENGTH = (MAX_BATCH_SIZE - 1).bit_length()
"""The longest RFC 9162 inclusion path in a batch of at most MAX_BATCH_SIZE leaves (16)."""

# gc=False: these trees hold no reference cycles, and skipping GC tracking makes
# decoding tens of thousands of them cheaper.

_Seq = Annotated[int, Meta(ge=0, le=MAX_SEQ)]
_Sig = Annotated[bytes, Meta(min_length=SIGNATURE_BYTES, max_length=SIGNATURE_BYTES)]
_Hash = Annotated[bytes, Meta(min_length=HASH_BYTES, max_length=HASH_BYTES)]
_Device = Annotated[str, Meta(min_length=1, max_length=MAX_DEVICE_BYTES)]


WireRecords = Annotated[tuple[Record, ...], Meta(min_length=1, max_length=MAX_RECORDS)]
"""A reading's records: Record is its own wire shape (see veriot.core.types.Record)."""


class WireBatchAuth(Struct, forbid_unknown_fields=True, gc=False):
    root: _Hash
    size: Annotated[int, Meta(ge=1, le=MAX_BATCH_SIZE)]
    index: Annotated[int, Meta(ge=0, lt=MAX_BATCH_SIZE)]
    path: Annotated[list[_Hash], Meta(max_length=MAX_PATH_LENGTH)]
    sig: _Sig


class WireReading(Struct, forbid_unknown_fields=True, gc=False):
    device: _Device
    seq: _Seq
    records: WireRecords
    sig: _Sig | UnsetType = UNSET
    batch: WireBatchAuth | UnsetType = UNSET


class WireBatchReading(Struct, forbid_unknown_fields=True, gc=False):
    seq: _Seq
    records: WireRecords


class WireCompactBatch(Struct, forbid_unknown_fields=True, gc=False):
    device: _Device
    sig: _Sig
    readings: Annotated[
        list[WireBatchReading], Meta(min_length=1, max_length=MAX_READINGS_PER_REQUEST)
    ]


class WireRequest(Struct, forbid_unknown_fields=True, omit_defaults=True, gc=False):
    readings: Annotated[list[WireReading], Meta(max_length=MAX_READINGS_PER_REQUEST)] = []
    batches: Annotated[list[WireCompactBatch], Meta(max_length=MAX_READINGS_PER_REQUEST)] = []
