"""Proof bundles: verification of every link, the JSON round trip, and malformed JSON."""

from __future__ import annotations

import copy
import dataclasses
import json
from typing import Any

import pytest

from veriot.core import canonical
from veriot.core.errors import (
    DecodeError,
    LedgerError,
    ProofError,
    RootMismatchError,
    SignatureError,
)
from veriot.core.types import BatchAuth, Reading, Record, SignedReading
from veriot.identity.did import did_from_public_key
from veriot.identity.signatures import public_key_from_seed, sign
from veriot.ledger.batch import batch_tree
from veriot.ledger.bundle import (
    Anchor,
    ProofBundle,
    bundle_from_json,
    bundle_leaf_hash,
    bundle_to_json,
    verify_bundle,
)
from veriot.ledger.checkpoint import log_public_key, sign_checkpoint
from veriot.ledger.compact import LogTree
from veriot.ledger.hashing import leaf_hash
from veriot.ledger.proof import consistency_proof, inclusion_proof
from veriot.ledger.testonly.memstore import MemoryNodes

DEVICE_SEED = bytes([7]) * 32
DEVICE_PK = public_key_from_seed(DEVICE_SEED)
DID = did_from_public_key(DEVICE_PK)
LOG_SEED = bytes([9]) * 32
LOG_PK = log_public_key(LOG_SEED)


def reading(seq: int) -> Reading:
    return Reading(DID, seq, (Record("temp", 20.0 + seq / 8, 1700000000.0 + seq, "Cel"),))


def own(seq: int) -> SignedReading:
    r = reading(seq)
    return SignedReading(r, signature=sign(DEVICE_SEED, canonical.reading_message(r)))


def batch(seqs: range) -> list[SignedReading]:
    readings = [reading(s) for s in seqs]
    root, paths = batch_tree([leaf_hash(canonical.reading_message(r)) for r in readings])
    sig = sign(DEVICE_SEED, canonical.batch_message(DID, len(readings), root))
    return [
        SignedReading(r, batch=BatchAuth(root, len(readings), i, paths[i], sig))
        for i, r in enumerate(readings)
    ]


def make(signed: SignedReading, anchored: bool = False) -> ProofBundle:
    """A log of 11 readings with `signed` at index 4, a checkpoint at 9 and an anchor at 11."""
    entries = [own(100 + i) for i in range(11)]
    entries[4] = signed
    tree, store = LogTree(), MemoryNodes()
    store.put(tree.append_leaf_hashes([bundle_leaf_hash(s) for s in entries[:9]]))
    cp = sign_checkpoint(LOG_SEED, 9, tree.root(), 1700000100.5)
    store.put(tree.append_leaf_hashes([bundle_leaf_hash(s) for s in entries[9:]]))
    anchor = consistency = None
    if anchored:
        anchor = Anchor(
            chain_id=31337,
            contract="0x" + "ab" * 20,
            tx_hash="0x" + "cd" * 32,
            block=42,
            size=11,
            root=tree.root(),
            timestamp=1700000200.0,
            log_id=cp.log_id,
        )
        consistency = consistency_proof(9, 11, store.get_nodes)
    return ProofBundle(
        signed=signed,
        device_public_key=DEVICE_PK,
        inclusion=inclusion_proof(4, 9, store.get_nodes),
        checkpoint=cp,
        log_public_key=LOG_PK,
        anchor=anchor,
        consistency=consistency,
    )


GOOD = {
    "own": make(own(1)),
    "batch": make(batch(range(5, 10))[3]),
    "anchored": make(own(1), anchored=True),
}


@pytest.mark.parametrize("name", GOOD)
def test_good_bundles_verify_and_survive_json(name: str) -> None:
    bundle = GOOD[name]
    verify_bundle(bundle)
    text = json.dumps(bundle_to_json(bundle))
    again = bundle_from_json(json.loads(text))
    assert again == bundle
    verify_bundle(again)


def test_anchor_at_the_checkpoint_size_needs_no_consistency_proof() -> None:
    b = GOOD["anchored"]
    assert b.anchor is not None
    anchor = dataclasses.replace(b.anchor, size=9, root=b.checkpoint.root)
    verify_bundle(dataclasses.replace(b, anchor=anchor, consistency=None))


def test_a_key_that_is_not_the_devices_is_named() -> None:
    other = public_key_from_seed(bytes(32))
    with pytest.raises(SignatureError, match=f"the reading is from {DID}; the bundle's device key"):
        verify_bundle(dataclasses.replace(GOOD["own"], device_public_key=other))


def test_an_edited_reading_fails_its_signature() -> None:
    b = GOOD["own"]
    edited = dataclasses.replace(b.signed, reading=reading(2))
    with pytest.raises(SignatureError, match="does not verify"):
        verify_bundle(dataclasses.replace(b, signed=edited))


def test_an_edited_batch_member_leads_to_another_batch_root() -> None:
    b = GOOD["batch"]
    edited = dataclasses.replace(b.signed, reading=reading(1))
    with pytest.raises(SignatureError, match="leads to root"):
        verify_bundle(dataclasses.replace(b, signed=edited))


def test_a_forged_batch_signature_fails() -> None:
    b = GOOD["batch"]
    assert b.signed.batch is not None
    auth = dataclasses.replace(b.signed.batch, signature=bytes(64))
    with pytest.raises(SignatureError, match=r"batch signature .* does not verify"):
        verify_bundle(dataclasses.replace(b, signed=dataclasses.replace(b.signed, batch=auth)))


def test_a_reading_the_log_did_not_commit_fails_inclusion() -> None:
    b = GOOD["own"]
    with pytest.raises(RootMismatchError):
        verify_bundle(dataclasses.replace(b, signed=own(3)))


def test_a_checkpoint_not_signed_by_the_log_fails() -> None:
    b = GOOD["own"]
    with pytest.raises(SignatureError, match="names log"):
        verify_bundle(dataclasses.replace(b, log_public_key=DEVICE_PK))
    cp = dataclasses.replace(b.checkpoint, timestamp=0.0)
    with pytest.raises(SignatureError, match="does not verify under log key"):
        verify_bundle(dataclasses.replace(b, checkpoint=cp))


def test_an_inclusion_proof_for_another_size_is_refused() -> None:
    b = GOOD["own"]
    proof = dataclasses.replace(b.inclusion, size=10)
    with pytest.raises(ProofError, match="size 10; the checkpoint is of size 9"):
        verify_bundle(dataclasses.replace(b, inclusion=proof))


def test_a_rewritten_anchor_root_fails_consistency() -> None:
    b = GOOD["anchored"]
    assert b.anchor is not None
    anchor = dataclasses.replace(b.anchor, root=bytes(32))
    with pytest.raises(RootMismatchError):
        verify_bundle(dataclasses.replace(b, anchor=anchor))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"consistency": None}, "consistency proof from size 9 to the anchor's 11 is missing"),
        ({"anchor_size": 8}, "the anchor covers 8 leaves, fewer than the checkpoint's 9"),
        ({"anchor_log": "00" * 32}, "the anchor is of log 0000"),
        ({"consistency_first": 8}, "from size 8 to 11; want from the checkpoint's 9"),
    ],
)
def test_anchor_links_of_the_wrong_shape(change: dict[str, Any], message: str) -> None:
    b = GOOD["anchored"]
    assert b.anchor is not None and b.consistency is not None
    anchor, proof = b.anchor, b.consistency
    if "anchor_size" in change:
        anchor = dataclasses.replace(anchor, size=change["anchor_size"])
    if "anchor_log" in change:
        anchor = dataclasses.replace(anchor, log_id=change["anchor_log"])
    if "consistency_first" in change:
        proof = dataclasses.replace(proof, first=change["consistency_first"])
    bundle = dataclasses.replace(
        b, anchor=anchor, consistency=None if "consistency" in change else proof
    )
    with pytest.raises(ProofError, match=message):
        verify_bundle(bundle)


def test_a_consistency_proof_without_an_anchor_is_refused() -> None:
    b = GOOD["anchored"]
    with pytest.raises(LedgerError, match="no anchor"):
        verify_bundle(dataclasses.replace(b, anchor=None))


def _mutated(edit: Any) -> dict[str, Any]:
    obj = copy.deepcopy(bundle_to_json(GOOD["anchored"]))
    edit(obj)
    return obj


def _set(path: str, value: Any) -> Any:
    def edit(obj: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        for p in parents:
            obj = obj[int(p)] if p.isdigit() else obj[p]  # type: ignore[index]
        obj[last] = value

    return edit


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (_set("version", 2), r"\$\.version: unsupported bundle version 2"),
        (_set("extra", 1), r"\$: unknown field\(s\) extra"),
        (_set("checkpoint.note", "x"), r"\$\.checkpoint: unknown field\(s\) note"),
        (_set("checkpoint.root", "ab" * 31), r"\$\.checkpoint\.root: want 32 bytes; got 31"),
        (_set("checkpoint.root", "zz" * 32), r"\$\.checkpoint\.root: not hex"),
        (_set("checkpoint.size", -1), r"\$\.checkpoint\.size: -1 is outside"),
        (_set("checkpoint.size", True), r"\$\.checkpoint\.size: want an integer; got bool"),
        (_set("checkpoint.log_id", "ABC"), r"\$\.checkpoint\.log_id: want 64 lowercase hex"),
        (_set("signature", "00" * 63), r"\$\.signature: want 64 bytes; got 63"),
        (_set("device_public_key", None), r"\$\.device_public_key: want a string; got null"),
        (_set("inclusion.hashes", "ab"), r"\$\.inclusion\.hashes: want a list of hashes"),
        (_set("reading.records", []), r"\$\.reading: a reading has 1 to 256 records; got 0"),
        (_set("reading.records.0.value", "1"), r"\$\.reading\.records\[0\]\.value: want a number"),
        (_set("anchor.contract", "0x12"), r"\$\.anchor\.contract: want a 0x-prefixed 20-byte"),
        (_set("batch", {"root": "00"}), r"\$\.batch\.root: want 32 bytes; got 1"),
        (
            _set("batch", bundle_to_json(GOOD["batch"])["batch"]),
            r"\$: want exactly one of signature and batch",
        ),
        (_set("signature", None), r"\$: want exactly one of signature and batch"),
        (lambda o: o.pop("inclusion"), r"\$\.inclusion: missing"),
        (_set("consistency", []), r"\$\.consistency: want an object; got list"),
    ],
)
def test_malformed_json_is_refused_with_the_field_named(edit: Any, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        bundle_from_json(_mutated(edit))


def test_not_an_object_at_all() -> None:
    with pytest.raises(DecodeError, match=r"\$: want an object; got list"):
        bundle_from_json([1, 2])
