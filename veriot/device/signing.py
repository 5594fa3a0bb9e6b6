"""Signing readings one at a time or many under one signature (a batch)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from veriot.core.canonical import batch_message, reading_message
from veriot.core.errors import InputError
from veriot.core.types import BatchAuth, Reading, Record, SignedReading
from veriot.core.wire import CompactBatch
from veriot.device.keys import DeviceKey
from veriot.ledger.batch import batch_tree
from veriot.ledger.hashing import leaf_hash


def sign_reading(key: DeviceKey, seq: int, records: Iterable[Record]) -> SignedReading:
    """The reading `seq` of `key`'s device, signed alone. Raises InputError when the
    reading cannot be encoded (no records, bad names, seq out of range, ...)."""
    reading = Reading(device=key.did, seq=seq, records=tuple(records))
    return SignedReading(reading=reading, signature=key.sign(reading_message(reading)))


def sign_batch(
    key: DeviceKey, readings: Sequence[Reading]
) -> tuple[CompactBatch, list[SignedReading]]:
    """Signs `readings` (in this order) with one signature over their RFC 9162 root.

    Returns the compact batch to send, and each reading with its own BatchAuth (root,
    size, index, inclusion path, signature) so that it can be proven alone. Requires
    every reading to be `key`'s device's; raises InputError otherwise, or when a reading
    cannot be encoded, or when there are none or more than canonical.MAX_BATCH_SIZE.
    """
    for r in readings:
        if r.device != key.did:
            raise InputError(f"reading {r.seq} is for device {r.device}; this key is {key.did}")
    leaves = [leaf_hash(reading_message(r)) for r in readings]
    root, paths = batch_tree(leaves)
    signature = key.sign(batch_message(key.did, len(readings), root))
    size = len(readings)
    signed = [
        SignedReading(
            reading=r,
            batch=BatchAuth(root=root, size=size, index=i, path=paths[i], signature=signature),
        )
        for i, r in enumerate(readings)
    ]
    return CompactBatch(device=key.did, signature=signature, readings=tuple(readings)), signed
