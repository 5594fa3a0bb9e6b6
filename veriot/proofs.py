"""Proof bundles and audits over a node's store: shared by the API and the CLI."""

from __future__ import annotations

from collections.abc import Sequence

from veriot.bootstrap import Node
from veriot.core.types import Checkpoint, InclusionProof
from veriot.ledger.audit import (
    DEFAULT_CHUNK,
    AuditReport,
    audit_log,
    committed_size,
    stream_leaves,
    with_index_findings,
)
from veriot.ledger.bundle import ProofBundle
from veriot.ledger.proof import consistency_proof, inclusion_proof
from veriot.ports import Anchor, Store


def build_bundle(node: Node, reading_id: str) -> ProofBundle | None:
    """The self-contained bundle of a reading, proved against the latest checkpoint (one is
    cut first when the reading is newer than it). None when there is no such reading."""
    stored = node.store.get_reading(reading_id)
    if stored is None:
        return None
    checkpoint = node.store.latest_checkpoint()
    if checkpoint is None or stored.index >= checkpoint.size:
        checkpoint = node.sequencer.checkpoint_now().result()
    assert checkpoint is not None and stored.index < checkpoint.size
    device = node.store.get_device(stored.signed.reading.device)
    assert device is not None, "a stored reading's device is registered"
    proof = inclusion_proof(stored.index, checkpoint.size, node.store.get_nodes)
    anchor = node.anchorer.anchor_for(checkpoint.size) if node.anchorer else None
    consistency = None
    if anchor is not None and anchor.size > checkpoint.size:
        consistency = consistency_proof(checkpoint.size, anchor.size, node.store.get_nodes)
    return ProofBundle(
        signed=stored.signed,
        device_public_key=device.public_key,
        inclusion=proof,
        checkpoint=checkpoint,
        log_public_key=node.log_public_key,
        anchor=anchor,
        consistency=consistency,
    )


def audit(store: Store, log_public_key: bytes, anchors: Sequence[Anchor] = ()) -> AuditReport:
    """Audits a whole store against its log (see veriot.ledger.audit), and against the
    roots anchored on chain when `anchors` (read from the chain) are given.

    The audited size is the largest of what the tree nodes commit to, the latest signed
    checkpoint and the latest anchor: reading rows added or deleted behind veriot's back
    cannot change what is checked. The store's index entries of every stored leaf are
    checked against the leaves as well (`Store.index_mismatches`).
    """
    checkpoints = store.list_checkpoints()
    committed = committed_size(store.get_nodes)
    size = max([committed, *(cp.size for cp in checkpoints), *(a.size for a in anchors)])
    report = audit_log(
        stream_leaves(store.leaf_data, size),
        size,
        store.get_nodes,
        checkpoints,
        log_public_key,
        anchors,
    )
    end = max(size, store.log_size())
    return with_index_findings(
        report,
        [
            mismatch
            for start in range(0, end, DEFAULT_CHUNK)
            for mismatch in store.index_mismatches(start, start + DEFAULT_CHUNK)
        ],
    )


def prove_index(node: Node, index: int) -> tuple[InclusionProof, Checkpoint]:
    """The inclusion proof of log leaf `index` to the latest checkpoint (one is cut first
    when the leaf is newer than it). Precondition: 0 <= index < the log's size."""
    checkpoint = node.store.latest_checkpoint()
    if checkpoint is None or index >= checkpoint.size:
        checkpoint = node.sequencer.checkpoint_now().result()
    assert checkpoint is not None and index < checkpoint.size
    return inclusion_proof(index, checkpoint.size, node.store.get_nodes), checkpoint
