"""The self-contained proof bundle of one reading, its JSON form, and its verification.

A bundle lets anyone holding only the log's public key check, offline, that a device
signed a reading and that the log committed to it (docs/log.md gives the JSON schema):

    device key --did:key--> reading.device
    device signature (own, or batch root + batch path) over the canonical reading
    leaf_hash(reading_leaf(signed)) --inclusion proof--> checkpoint.root
    checkpoint signature under the log key
    optionally: checkpoint.root --consistency proof--> anchor.root (an on-chain anchor)

Checking that the anchor really is on chain is the chain layer's job, not this module's.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from veriot.core import canonical
from veriot.core.errors import DecodeError, InputError, ProofError, SignatureError
from veriot.core.types import (
    BatchAuth,
    Checkpoint,
    ConsistencyProof,
    InclusionProof,
    Reading,
    Record,
    SignedReading,
)
from veriot.identity.did import did_from_public_key
from veriot.identity.signatures import verify_signature
from veriot.ledger.batch import batch_root_from_path
from veriot.ledger.checkpoint import verify_checkpoint
from veriot.ledger.hashing import HASH_SIZE, leaf_hash
from veriot.ledger.proof import verify_consistency, verify_inclusion
from veriot.ports import Anchor

__all__ = [
    "BUNDLE_VERSION",
    "Anchor",
    "ProofBundle",
    "bundle_from_json",
    "bundle_leaf_hash",
    "bundle_to_json",
    "verify_bundle",
    "verify_reading_signature",
]

BUNDLE_VERSION = 1
PUBLIC_KEY_BYTES = 32
SIGNATURE_BYTES = 64
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}\Z")
_TX_HASH = re.compile(r"0x[0-9a-fA-F]{64}\Z")


@dataclass(frozen=True, slots=True)
class ProofBundle:
    """Everything needed to check one reading offline.

    `inclusion` proves the reading's log leaf in the tree of `checkpoint`; when `anchor`
    is set, `consistency` (from checkpoint.size to anchor.size) links the checkpoint to
    the anchored root, and may be None only when both sizes are equal.
    """

    signed: SignedReading
    device_public_key: bytes
    inclusion: InclusionProof
    checkpoint: Checkpoint
    log_public_key: bytes
    anchor: Anchor | None = None
    consistency: ConsistencyProof | None = None


# --- verification ------------------------------------------------------------------------


def verify_reading_signature(
    signed: SignedReading, public_key: bytes, message: bytes | None = None
) -> None:
    """Checks the device's authentication of a reading: its own signature over the
    canonical reading message, or its batch signature over the batch root that the batch
    path leads to from `leaf_hash(message)`. Raises SignatureError, ProofError,
    RootMismatchError, or InputError for an unencodable reading."""
    reading = signed.reading
    if message is None:
        message = canonical.reading_message(reading)
    if (signed.signature is None) == (signed.batch is None):
        raise InputError("a signed reading has exactly one of a signature and a batch")
    if signed.signature is not None:
        if not verify_signature(public_key, message, signed.signature):
            raise SignatureError(
                f"signature of reading {reading.device} seq {reading.seq} does not verify "
                f"under key {public_key.hex()}"
            )
        return
    assert signed.batch is not None
    b = signed.batch
    root = batch_root_from_path(leaf_hash(message), b.index, b.size, b.path)
    if root != b.root:
        raise SignatureError(
            f"batch path of reading {reading.device} seq {reading.seq} leads to root "
            f"{root.hex()}; the batch signature is over {b.root.hex()}"
        )
    if not verify_signature(
        public_key, canonical.batch_message(reading.device, b.size, root), b.signature
    ):
        raise SignatureError(
            f"batch signature of reading {reading.device} seq {reading.seq} (batch root "
            f"{root.hex()}, size {b.size}) does not verify under key {public_key.hex()}"
        )


def bundle_leaf_hash(signed: SignedReading) -> bytes:
    """The log leaf hash of an accepted reading: leaf_hash(reading_leaf(signed))."""
    return leaf_hash(canonical.reading_leaf(signed))


def verify_bundle(bundle: ProofBundle) -> None:
    """Checks every link of the bundle (see the module docstring); returns None when all
    hold. Raises SignatureError (a device or log signature, or a key that is not the
    device's), ProofError (a proof of the wrong shape or for other sizes),
    RootMismatchError (a proof that leads elsewhere) or InputError (malformed values)."""
    signed, cp = bundle.signed, bundle.checkpoint
    device = signed.reading.device
    key_did = did_from_public_key(bundle.device_public_key)
    if key_did != device:
        raise SignatureError(f"the reading is from {device}; the bundle's device key is {key_did}")
    message = canonical.reading_message(signed.reading)
    verify_reading_signature(signed, bundle.device_public_key, message)
    verify_checkpoint(cp, bundle.log_public_key)
    if bundle.inclusion.size != cp.size:
        raise ProofError(
            f"inclusion proof is for a tree of size {bundle.inclusion.size}; "
            f"the checkpoint is of size {cp.size}"
        )
    leaf = leaf_hash(canonical.reading_leaf(signed, message))
    verify_inclusion(leaf, bundle.inclusion, cp.root)
    if bundle.anchor is not None:
        _verify_anchor_link(cp, bundle.anchor, bundle.consistency)
    elif bundle.consistency is not None:
        raise ProofError("the bundle has a consistency proof but no anchor")


def _verify_anchor_link(cp: Checkpoint, anchor: Anchor, proof: ConsistencyProof | None) -> None:
    if anchor.log_id and anchor.log_id != cp.log_id:
        raise ProofError(f"the anchor is of log {anchor.log_id}; the checkpoint of log {cp.log_id}")
    if anchor.size < cp.size:
        raise ProofError(
            f"the anchor covers {anchor.size} leaves, fewer than the checkpoint's {cp.size}; "
            "a bundle needs an anchor at or after its checkpoint"
        )
    if proof is None:
        if anchor.size != cp.size:
            raise ProofError(
                f"a consistency proof from size {cp.size} to the anchor's {anchor.size} is missing"
            )
        proof = ConsistencyProof(first=cp.size, second=anchor.size, hashes=())
    if (proof.first, proof.second) != (cp.size, anchor.size):
        raise ProofError(
            f"consistency proof is from size {proof.first} to {proof.second}; want from the "
            f"checkpoint's {cp.size} to the anchor's {anchor.size}"
        )
    verify_consistency(proof, cp.root, anchor.root)


# --- JSON ----------------------------------------------------------------------------------


def _hashes(hs: tuple[bytes, ...]) -> list[str]:
    return [h.hex() for h in hs]


def bundle_to_json(bundle: ProofBundle) -> dict[str, Any]:
    """The JSON object of a bundle (docs/log.md): hex for hashes, keys and signatures."""
    s, cp = bundle.signed, bundle.checkpoint
    batch = None
    if s.batch is not None:
        b = s.batch
        batch = {
            "root": b.root.hex(),
            "size": b.size,
            "index": b.index,
            "path": _hashes(b.path),
            "signature": b.signature.hex(),
        }
    anchor = None
    if bundle.anchor is not None:
        a = bundle.anchor
        anchor = {
            "chain_id": a.chain_id,
            "contract": a.contract,
            "tx_hash": a.tx_hash,
            "block": a.block,
            "log_id": a.log_id,
            "size": a.size,
            "root": a.root.hex(),
            "timestamp": a.timestamp,
        }
    consistency = None
    if bundle.consistency is not None:
        c = bundle.consistency
        consistency = {"first": c.first, "second": c.second, "hashes": _hashes(c.hashes)}
    return {
        "version": BUNDLE_VERSION,
        "reading": {
            "device": s.reading.device,
            "seq": s.reading.seq,
            "records": [
                {"name": r.name, "value": r.value, "time": r.time, "unit": r.unit}
                for r in s.reading.records
            ],
        },
        "signature": None if s.signature is None else s.signature.hex(),
        "batch": batch,
        "device_public_key": bundle.device_public_key.hex(),
        "inclusion": {
            "index": bundle.inclusion.index,
            "size": bundle.inclusion.size,
            "hashes": _hashes(bundle.inclusion.hashes),
        },
        "checkpoint": {
            "log_id": cp.log_id,
            "size": cp.size,
            "root": cp.root.hex(),
            "timestamp": cp.timestamp,
            "signature": cp.signature.hex(),
        },
        "log_public_key": bundle.log_public_key.hex(),
        "anchor": anchor,
        "consistency": consistency,
    }


T = TypeVar("T")


class _Obj:
    """A JSON object being decoded: every field read is checked, and fields left unread
    are reported as unknown."""

    def __init__(self, value: object, path: str) -> None:
        if not isinstance(value, Mapping):
            raise DecodeError(f"{path}: want an object; got {_kind(value)}")
        self.value, self.path = value, path
        self.read: set[str] = set()

    def field(self, name: str, decode: Callable[[object, str], T]) -> T:
        self.read.add(name)
        where = f"{self.path}.{name}"
        if name not in self.value:
            raise DecodeError(f"{where}: missing")
        return decode(self.value[name], where)

    def nullable(self, name: str, decode: Callable[[object, str], T]) -> T | None:
        self.read.add(name)
        value = self.value.get(name)
        return None if value is None else decode(value, f"{self.path}.{name}")

    def done(self) -> None:
        unknown = sorted(str(k) for k in self.value if k not in self.read)
        if unknown:
            raise DecodeError(f"{self.path}: unknown field(s) {', '.join(unknown)}")


def _kind(value: object) -> str:
    return "null" if value is None else type(value).__name__


def _int(value: object, path: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise DecodeError(f"{path}: want an integer; got {_kind(value)}")
    if not 0 <= value < 2**64:
        raise DecodeError(f"{path}: {value} is outside 0 .. 2**64-1")
    return value


def _float(value: object, path: str) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise DecodeError(f"{path}: want a number; got {_kind(value)}")
    if not math.isfinite(value):
        raise DecodeError(f"{path}: want a finite number; got {value}")
    return float(value)


def _str(value: object, path: str) -> str:
    if not isinstance(value, str):
        raise DecodeError(f"{path}: want a string; got {_kind(value)}")
    return value


def _hex(length: int) -> Callable[[object, str], bytes]:
    def decode(value: object, path: str) -> bytes:
        text = _str(value, path)
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            raise DecodeError(f"{path}: not hex ({text[:80]!r})") from None
        if len(raw) != length:
            raise DecodeError(f"{path}: want {length} bytes; got {len(raw)}")
        return raw

    return decode


_hash = _hex(HASH_SIZE)
_signature = _hex(SIGNATURE_BYTES)
_public_key = _hex(PUBLIC_KEY_BYTES)


def _hash_list(value: object, path: str) -> tuple[bytes, ...]:
    if not isinstance(value, list):
        raise DecodeError(f"{path}: want a list of hashes; got {_kind(value)}")
    if len(value) > 128:
        raise DecodeError(f"{path}: {len(value)} hashes; at most 128")
    return tuple(_hash(h, f"{path}[{i}]") for i, h in enumerate(value))


def _pattern(regex: re.Pattern[str], what: str) -> Callable[[object, str], str]:
    def decode(value: object, path: str) -> str:
        text = _str(value, path)
        if not regex.match(text):
            raise DecodeError(f"{path}: want {what}; got {text[:80]!r}")
        return text

    return decode


def _record(value: object, path: str) -> Record:
    o = _Obj(value, path)
    record = Record(
        name=o.field("name", _str),
        value=o.field("value", _float),
        time=o.field("time", _float),
        unit=o.field("unit", _str),
    )
    o.done()
    return record


def _reading(value: object, path: str) -> Reading:
    o = _Obj(value, path)
    device, seq = o.field("device", _str), o.field("seq", _int)
    records = o.field("records", _list(_record))
    o.done()
    reading = Reading(device=device, seq=seq, records=records)
    try:
        canonical.reading_message(reading)
    except InputError as exc:
        raise DecodeError(f"{path}: {exc}") from None
    return reading


def _list(item: Callable[[object, str], T]) -> Callable[[object, str], tuple[T, ...]]:
    def decode(value: object, path: str) -> tuple[T, ...]:
        if not isinstance(value, list):
            raise DecodeError(f"{path}: want a list; got {_kind(value)}")
        return tuple(item(v, f"{path}[{i}]") for i, v in enumerate(value))

    return decode


def _batch(value: object, path: str) -> BatchAuth:
    o = _Obj(value, path)
    batch = BatchAuth(
        root=o.field("root", _hash),
        size=o.field("size", _int),
        index=o.field("index", _int),
        path=o.field("path", _hash_list),
        signature=o.field("signature", _signature),
    )
    o.done()
    return batch


def _inclusion(value: object, path: str) -> InclusionProof:
    o = _Obj(value, path)
    proof = InclusionProof(
        index=o.field("index", _int),
        size=o.field("size", _int),
        hashes=o.field("hashes", _hash_list),
    )
    o.done()
    return proof


def _consistency(value: object, path: str) -> ConsistencyProof:
    o = _Obj(value, path)
    proof = ConsistencyProof(
        first=o.field("first", _int),
        second=o.field("second", _int),
        hashes=o.field("hashes", _hash_list),
    )
    o.done()
    return proof


def _checkpoint(value: object, path: str) -> Checkpoint:
    o = _Obj(value, path)
    cp = Checkpoint(
        log_id=o.field(
            "log_id", _pattern(re.compile(r"[0-9a-f]{64}\Z"), "64 lowercase hex digits")
        ),
        size=o.field("size", _int),
        root=o.field("root", _hash),
        timestamp=o.field("timestamp", _float),
        signature=o.field("signature", _signature),
    )
    o.done()
    return cp


def _anchor(value: object, path: str) -> Anchor:
    o = _Obj(value, path)
    anchor = Anchor(
        chain_id=o.field("chain_id", _int),
        contract=o.field("contract", _pattern(_ADDRESS, "a 0x-prefixed 20-byte address")),
        tx_hash=o.field("tx_hash", _pattern(_TX_HASH, "a 0x-prefixed 32-byte hash")),
        block=o.field("block", _int),
        log_id=o.field("log_id", _str),
        size=o.field("size", _int),
        root=o.field("root", _hash),
        timestamp=o.field("timestamp", _float),
    )
    o.done()
    return anchor


def checkpoint_from_json(obj: object) -> Checkpoint:
    """A checkpoint in the bundle's JSON form. Raises DecodeError naming the bad field."""
    return _checkpoint(obj, "$")


def inclusion_from_json(obj: object) -> InclusionProof:
    """An inclusion proof in the bundle's JSON form. Raises DecodeError naming the bad field."""
    return _inclusion(obj, "$")


def bundle_from_json(obj: object) -> ProofBundle:
    """Decodes the JSON object of a bundle (as `json.loads` returns it). Raises DecodeError
    naming the field for malformed input, unknown fields or values of the wrong length.
    Decoding checks shapes only; `verify_bundle` checks that the bundle proves anything."""
    o = _Obj(obj, "$")
    version = o.field("version", _int)
    if version != BUNDLE_VERSION:
        raise DecodeError(f"$.version: unsupported bundle version {version}; want {BUNDLE_VERSION}")
    reading = o.field("reading", _reading)
    signature = o.nullable("signature", _signature)
    batch = o.nullable("batch", _batch)
    if (signature is None) == (batch is None):
        raise DecodeError("$: want exactly one of signature and batch")
    bundle = ProofBundle(
        signed=SignedReading(reading=reading, signature=signature, batch=batch),
        device_public_key=o.field("device_public_key", _public_key),
        inclusion=o.field("inclusion", _inclusion),
        checkpoint=o.field("checkpoint", _checkpoint),
        log_public_key=o.field("log_public_key", _public_key),
        anchor=o.nullable("anchor", _anchor),
        consistency=o.nullable("consistency", _consistency),
    )
    o.done()
    return bundle
