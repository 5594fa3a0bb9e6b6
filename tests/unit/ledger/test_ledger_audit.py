"""The audit finds each kind of tampering with the stored log, and nothing in a clean one."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import pytest

from veriot.core.types import Checkpoint, NodeId
from veriot.ledger.audit import (
    AuditReport,
    FindingKind,
    audit_log,
    check_anchor,
    stream_leaves,
)
from veriot.ledger.bundle import Anchor
from veriot.ledger.checkpoint import log_public_key, sign_checkpoint
from veriot.ledger.compact import LogTree
from veriot.ledger.hashing import leaf_hash
from veriot.ledger.testonly.memstore import MemoryNodes

SEED = bytes([3]) * 32
PK = log_public_key(SEED)
N = 50
CHUNK = 8  # small, so that findings fall across chunk borders


class Log:
    """A stored log: leaf data by index, the node table, and checkpoints at 10, 20, ..., 50."""

    def __init__(self) -> None:
        self.leaves: dict[int, bytes] = {i: b"reading %d" % i for i in range(N)}
        self.nodes = MemoryNodes()
        self.checkpoints: list[Checkpoint] = []
        tree = LogTree()
        for start in range(0, N, 10):
            batch = [leaf_hash(self.leaves[i]) for i in range(start, start + 10)]
            self.nodes.put(tree.append_leaf_hashes(batch))
            self.checkpoints.append(sign_checkpoint(SEED, tree.size, tree.root(), float(start)))
        self.size = N

    def leaf_data(self, start: int, end: int) -> list[tuple[int, bytes]]:
        return [(i, self.leaves[i]) for i in sorted(self.leaves) if start <= i < end]

    def audit(self, anchors: tuple[Anchor, ...] = ()) -> AuditReport:
        return audit_log(
            stream_leaves(self.leaf_data, self.size, CHUNK),
            self.size,
            self.nodes.get_nodes,
            self.checkpoints,
            PK,
            anchors=anchors,
            chunk=CHUNK,
        )


def kinds(report: AuditReport) -> list[tuple[FindingKind, int]]:
    return [(f.kind, f.index) for f in report.findings]


def test_a_clean_log_passes() -> None:
    log = Log()
    report = log.audit()
    assert report.ok, report.findings
    assert (report.size, report.leaves_checked, report.checkpoints_checked) == (N, N, 5)


def test_edited_reading() -> None:
    log = Log()
    log.leaves[17] = b"reading 17, but warmer"
    report = log.audit()
    assert kinds(report) == [(FindingKind.EDITED, 17)]
    assert "stored at index 17" in report.findings[0].detail
    assert not report.ok


def test_deleted_readings_in_the_middle_and_at_the_end() -> None:
    log = Log()
    for i in (8, 9, 10, 48, 49):
        del log.leaves[i]
    report = log.audit()
    assert kinds(report) == [(FindingKind.DELETED, 8), (FindingKind.DELETED, 48)]
    assert [f.count for f in report.findings] == [3, 2]
    assert "leaves 8..10 are committed but not stored" in report.findings[0].detail


def test_inserted_readings_beyond_the_log_and_duplicates() -> None:
    log = Log()
    log.leaves[N + 3] = b"forged"

    def leaf_data(start: int, end: int) -> list[tuple[int, bytes]]:
        rows = Log.leaf_data(log, start, end)
        return rows + [(i, d) for i, d in rows if i == 12]  # a second row at index 12

    report = audit_log(
        stream_leaves(leaf_data, N, CHUNK), N, log.nodes.get_nodes, log.checkpoints, PK, chunk=CHUNK
    )
    assert kinds(report) == [(FindingKind.INSERTED, 12), (FindingKind.INSERTED, N + 3)]


def test_reordered_readings() -> None:
    log = Log()
    log.leaves[3], log.leaves[30] = log.leaves[30], log.leaves[3]
    report = log.audit()
    assert kinds(report) == [(FindingKind.REORDERED, 3), (FindingKind.REORDERED, 30)]
    assert "committed at index 30" in report.findings[0].detail


def test_reading_and_its_leaf_node_edited_together_breaks_the_signed_roots() -> None:
    log = Log()
    log.leaves[25] = b"rewritten"
    log.nodes.nodes[NodeId(0, 25)] = leaf_hash(b"rewritten")
    report = log.audit()
    roots = report.of_kind(FindingKind.ROOT_MISMATCH)
    assert [(f.index, f.count) for f in roots] == [(30, 3)]  # checkpoints 30, 40, 50
    assert "up to size 50" in roots[0].detail
    assert not report.of_kind(FindingKind.EDITED)
    # The stored parent of leaf 25 no longer matches its children either.
    assert (FindingKind.NODE_MISMATCH, 24) in kinds(report)


def test_whole_path_rewritten_is_still_caught_by_the_signature_over_the_root() -> None:
    log = Log()
    log.leaves[25] = b"rewritten"
    tree, store = LogTree(), MemoryNodes()
    store.put(tree.append_leaf_hashes([leaf_hash(log.leaves[i]) for i in range(N)]))
    log.nodes = store
    report = log.audit()
    assert kinds(report) == [(FindingKind.ROOT_MISMATCH, 30)]


def test_bad_checkpoint_signature() -> None:
    log = Log()
    log.checkpoints[1] = dataclasses.replace(log.checkpoints[1], timestamp=99.0)
    report = log.audit()
    assert kinds(report) == [(FindingKind.BAD_CHECKPOINT_SIGNATURE, 20)]


def test_checkpoint_beyond_the_stored_log_means_deleted_leaves() -> None:
    log = Log()
    log.size = 40
    for i in range(40, N):
        del log.leaves[i]
    report = log.audit()
    assert [(f.kind, f.index, f.count) for f in report.findings] == [(FindingKind.DELETED, 40, 10)]


def test_tampered_and_missing_interior_nodes() -> None:
    log = Log()
    log.nodes.nodes[NodeId(2, 3)] = bytes(32)
    del log.nodes.nodes[NodeId(0, 45)]
    report = log.audit()
    assert kinds(report) == [(FindingKind.NODE_MISMATCH, 12), (FindingKind.MISSING_NODE, 45)]


def test_anchors_are_checked_in_the_same_pass_and_alone() -> None:
    log = Log()
    good = Anchor(1, "0x" + "00" * 20, "0x" + "11" * 32, 7, 20, log.checkpoints[1].root, 1.0)
    bad = dataclasses.replace(good, size=40, root=bytes(32))
    report = log.audit(anchors=(good, bad))
    assert kinds(report) == [(FindingKind.ANCHOR_MISMATCH, 40)]
    assert report.anchors_checked == 2
    assert check_anchor(20, good.root, log.nodes.get_nodes) is None
    finding = check_anchor(40, bytes(32), log.nodes.get_nodes)
    assert finding is not None and finding.kind is FindingKind.ANCHOR_MISMATCH
    gone = check_anchor(60, bytes(32), log.nodes.get_nodes)
    assert gone is not None and "cannot be rebuilt" in gone.detail


@pytest.mark.parametrize("chunk", [1, 3, 64])
def test_findings_do_not_depend_on_the_chunk_size(chunk: int) -> None:
    log = Log()
    log.leaves[5] = b"edited"
    del log.leaves[6]
    report = audit_log(
        stream_leaves(log.leaf_data, N, chunk),
        N,
        log.nodes.get_nodes,
        log.checkpoints,
        PK,
        chunk=chunk,
    )
    assert kinds(report) == [(FindingKind.EDITED, 5), (FindingKind.DELETED, 6)]


@pytest.mark.parametrize("size", [0, 1, 2, 3, 5, 8, 63, 64, 65, 1000])
def test_committed_size_counts_level0_nodes_with_few_reads(size: int) -> None:
    from veriot.ledger.audit import committed_size
    from veriot.ledger.testonly.memstore import build_log

    _, nodes = build_log([b"leaf %d" % i for i in range(size)])
    reads = 0

    def counting_fetch(ids: Sequence[NodeId]) -> list[bytes]:
        nonlocal reads
        reads += 1
        return nodes.get_nodes(ids)

    assert committed_size(counting_fetch) == size
    assert reads <= 2 * max(1, size).bit_length() + 2
