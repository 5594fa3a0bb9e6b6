"""Proof building and checking: bad inputs are refused with their facts, and any tampering
with a good proof (in the manner of transparency-dev/merkle's corrupt-proof probes) fails."""

from __future__ import annotations

import pytest

from veriot.core.errors import (
    InputError,
    LedgerError,
    MissingNodeError,
    ProofError,
    RootMismatchError,
    StoreError,
)
from veriot.core.types import ConsistencyProof, InclusionProof, NodeId
from veriot.ledger.compact import LogTree, compact_range_ids
from veriot.ledger.hashing import EMPTY_ROOT, leaf_hash, node_hash
from veriot.ledger.proof import (
    consistency_proof,
    inclusion_proof,
    plan_inclusion,
    root_at,
    verify_consistency,
    verify_inclusion,
)
from veriot.ledger.testonly.memstore import build_log

DATA = [b"r%d" % i for i in range(40)]
TREE, STORE = build_log(DATA)
FETCH = STORE.get_nodes
SOME = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")


def root(n: int) -> bytes:
    return root_at(n, FETCH)


@pytest.mark.parametrize(("index", "size"), [(0, 0), (1, 1), (5, 3), (-1, 4), (41, 41)])
def test_inclusion_of_an_index_outside_the_tree_is_refused(index: int, size: int) -> None:
    with pytest.raises(ProofError, match=f"leaf index {index} is outside a tree of size {size}"):
        plan_inclusion(index, size)


@pytest.mark.parametrize(("first", "second"), [(5, 4), (-1, 3), (9, 8)])
def test_consistency_back_in_time_is_refused(first: int, second: int) -> None:
    with pytest.raises(ProofError, match=f"got first {first}, second {second}"):
        consistency_proof(first, second, FETCH)


def test_proofs_beyond_the_stored_tree_report_the_missing_node() -> None:
    with pytest.raises(MissingNodeError) as info:
        inclusion_proof(3, 41, FETCH)
    assert (info.value.level, info.value.index) == (0, 40)


def test_a_store_returning_a_short_hash_is_a_store_error() -> None:
    def bad_fetch(ids: object) -> list[bytes]:
        return [b"\x00" * 31 for _ in compact_range_ids(7)]

    with pytest.raises(StoreError, match="is 31 bytes; want 32"):
        root_at(7, bad_fetch)


def _inclusion_probes(
    p: InclusionProof, leaf: bytes, r: bytes
) -> dict[str, tuple[bytes, InclusionProof, bytes]]:
    i, n, hs = p.index, p.size, p.hashes
    probes = {
        "index - 1": (leaf, InclusionProof(i - 1, n, hs), r),
        "index + 1": (leaf, InclusionProof(i + 1, n, hs), r),
        "index ^ 2": (leaf, InclusionProof(i ^ 2, n, hs), r),
        "size * 2": (leaf, InclusionProof(i, n * 2, hs), r),
        "size / 2": (leaf, InclusionProof(i, n // 2, hs), r),
        "wrong leaf": (leaf_hash(b"wrong"), p, r),
        "empty root": (leaf, p, EMPTY_ROOT),
        "random root": (leaf, p, SOME),
        "trailing root": (leaf, InclusionProof(i, n, (*hs, r)), r),
        "preceding root": (leaf, InclusionProof(i, n, (r, *hs)), r),
    }
    for k in range(len(hs)):
        flipped = bytes([hs[k][0] ^ 8]) + hs[k][1:]
        probes[f"bit flip {k}"] = (leaf, InclusionProof(i, n, (*hs[:k], flipped, *hs[k + 1 :])), r)
    if hs:
        probes["removed"] = (leaf, InclusionProof(i, n, hs[:-1]), r)
    if len(hs) > 1:
        probes["inserted"] = (leaf, InclusionProof(i, n, (hs[0], SOME, *hs[1:])), r)
    return probes


@pytest.mark.parametrize(
    ("index", "size"), [(0, 1), (0, 8), (5, 8), (2, 3), (1, 5), (20, 37), (39, 40)]
)
def test_every_tampered_inclusion_proof_fails(index: int, size: int) -> None:
    proof = inclusion_proof(index, size, FETCH)
    leaf = leaf_hash(DATA[index])
    verify_inclusion(leaf, proof, root(size))
    for name, (lf, p, r) in _inclusion_probes(proof, leaf, root(size)).items():
        with pytest.raises(LedgerError):
            verify_inclusion(lf, p, r)
            pytest.fail(f"accepted probe {name!r}")


def test_inclusion_errors_carry_the_facts() -> None:
    proof = inclusion_proof(5, 8, FETCH)
    with pytest.raises(ProofError, match="has 2 hashes; want 3"):
        verify_inclusion(leaf_hash(DATA[5]), InclusionProof(5, 8, proof.hashes[:2]), root(8))
    with pytest.raises(RootMismatchError) as info:
        verify_inclusion(leaf_hash(b"other"), proof, root(8))
    assert info.value.expected == root(8)
    assert f"want {root(8).hex()}" in str(info.value)
    with pytest.raises(ProofError, match="leaf hash is 3 bytes"):
        verify_inclusion(b"abc", proof, root(8))


@pytest.mark.parametrize(
    ("first", "second"), [(1, 8), (6, 8), (2, 5), (6, 7), (3, 7), (13, 40), (32, 33)]
)
def test_every_tampered_consistency_proof_fails(first: int, second: int) -> None:
    proof = consistency_proof(first, second, FETCH)
    r1, r2 = root(first), root(second)
    verify_consistency(proof, r1, r2)
    hs = proof.hashes
    probes = {
        "first - 1": (ConsistencyProof(first - 1, second, hs), r1, r2),
        "first + 1": (ConsistencyProof(first + 1, second, hs), r1, r2),
        "first ^ 2": (ConsistencyProof(first ^ 2, second, hs), r1, r2),
        "second * 2": (ConsistencyProof(first, second * 2, hs), r1, r2),
        "second / 2": (ConsistencyProof(first, second // 2, hs), r1, r2),
        "wrong root1": (proof, SOME, r2),
        "wrong root2": (proof, r1, SOME),
        "swapped roots": (proof, r2, r1),
        "empty proof": (ConsistencyProof(first, second, ()), r1, r2),
        "trailing root1": (ConsistencyProof(first, second, (*hs, r1)), r1, r2),
        "preceding root2": (ConsistencyProof(first, second, (r2, *hs)), r1, r2),
        "preceding proof[0]": (ConsistencyProof(first, second, (hs[0], *hs)), r1, r2),
        "truncated": (ConsistencyProof(first, second, hs[:-1]), r1, r2),
    }
    for k in range(len(hs)):
        flipped = bytes([hs[k][0] ^ 16]) + hs[k][1:]
        probes[f"bit flip {k}"] = (
            ConsistencyProof(first, second, (*hs[:k], flipped, *hs[k + 1 :])),
            r1,
            r2,
        )
    for name, (p, a, b) in probes.items():
        with pytest.raises(LedgerError):
            verify_consistency(p, a, b)
            pytest.fail(f"accepted probe {name!r}")


def test_trivial_consistency_cases() -> None:
    verify_consistency(ConsistencyProof(0, 0, ()), EMPTY_ROOT, EMPTY_ROOT)
    verify_consistency(ConsistencyProof(0, 9, ()), EMPTY_ROOT, root(9))
    verify_consistency(ConsistencyProof(4, 4, ()), root(4), root(4))
    with pytest.raises(RootMismatchError):
        verify_consistency(ConsistencyProof(4, 4, ()), root(4), root(5))
    with pytest.raises(ProofError, match="must be empty; got 1 hashes"):
        verify_consistency(ConsistencyProof(4, 4, (root(4),)), root(4), root(4))
    with pytest.raises(ProofError, match="got first 5, second 4"):
        verify_consistency(ConsistencyProof(5, 4, ()), root(5), root(4))


def test_log_tree_matches_known_small_trees() -> None:
    a, b, c = (leaf_hash(x) for x in (b"a", b"b", b"c"))
    tree = LogTree()
    assert tree.root() == EMPTY_ROOT
    new = tree.append_leaf_hashes([a, b, c])
    assert new.levels == {0: (0, [a, b, c]), 1: (0, [node_hash(a, b)])}
    assert list(new) == [
        (NodeId(0, 0), a),
        (NodeId(0, 1), b),
        (NodeId(0, 2), c),
        (NodeId(1, 0), node_hash(a, b)),
    ]
    assert tree.size == 3
    assert tree.root() == node_hash(node_hash(a, b), c)
    assert tree.hashes == (node_hash(a, b), c)
    # each level's run starts where that level stood: leaf 3, node (1, 1), node (2, 0)
    d = leaf_hash(b"d")
    cd = node_hash(c, d)
    more = tree.append_leaf_hashes([d])
    assert more.levels == {0: (3, [d]), 1: (1, [cd]), 2: (0, [node_hash(node_hash(a, b), cd)])}
    assert len(more) == 3


def test_log_tree_refuses_bad_hashes_and_bad_state() -> None:
    tree = LogTree()
    with pytest.raises(InputError, match="leaf hash is 32 bytes; got 3"):
        tree.append_leaf_hashes([leaf_hash(b"x"), b"abc"])
    assert tree.size == 0
    with pytest.raises(InputError, match="size 3 has 2 right-edge hashes; got 1"):
        LogTree(3, [EMPTY_ROOT])


def test_restore_reads_one_node_per_set_bit() -> None:
    STORE.reads = 0
    tree = LogTree.restore(37, FETCH)
    assert STORE.reads == 3
    assert tree.root() == root(37) == build_log(DATA[:37])[0].root()
