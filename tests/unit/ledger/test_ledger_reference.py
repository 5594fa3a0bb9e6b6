"""The fast tree, proofs and batch paths agree with the RFC 9162 reference for every size
up to 130 and for random larger ones."""

from __future__ import annotations

import random

import pytest

from veriot.core.errors import InputError
from veriot.core.types import ConsistencyProof
from veriot.ledger.batch import batch_root, batch_tree
from veriot.ledger.compact import LogTree
from veriot.ledger.hashing import leaf_hash
from veriot.ledger.proof import (
    consistency_proof,
    consistency_proof_length,
    inclusion_proof,
    inclusion_proof_length,
    root_at,
    verify_consistency,
    verify_inclusion,
)
from veriot.ledger.testonly import reference
from veriot.ledger.testonly.memstore import build_log

MAX = 130
DATA = [f"leaf {i}".encode() for i in range(MAX)]
HASHES = [leaf_hash(d) for d in DATA]
TREE, STORE = build_log(DATA)
ROOTS = [reference.mth(DATA[:n]) for n in range(MAX + 1)]


def test_root_of_every_size_from_the_tree_and_from_stored_nodes() -> None:
    tree = LogTree()
    for n in range(MAX + 1):
        assert tree.root() == ROOTS[n], n
        assert root_at(n, STORE.get_nodes) == ROOTS[n], n
        if n < MAX:
            tree.append_leaf_hashes([HASHES[n]])


@pytest.mark.parametrize("size", range(1, MAX + 1))
def test_inclusion_of_every_leaf(size: int) -> None:
    for index in range(size):
        got = inclusion_proof(index, size, STORE.get_nodes)
        assert list(got.hashes) == reference.path(index, DATA[:size]), (index, size)
        assert len(got.hashes) == inclusion_proof_length(index, size)
        verify_inclusion(HASHES[index], got, ROOTS[size])


@pytest.mark.parametrize("second", range(1, MAX + 1))
def test_consistency_from_every_smaller_size(second: int) -> None:
    for first in range(1, second + 1):
        got = consistency_proof(first, second, STORE.get_nodes)
        assert list(got.hashes) == reference.proof(first, DATA[:second]), (first, second)
        assert len(got.hashes) == consistency_proof_length(first, second)
        verify_consistency(got, ROOTS[first], ROOTS[second])


@pytest.mark.parametrize("size", range(1, MAX + 1))
def test_batch_tree_root_and_paths(size: int) -> None:
    root, paths = batch_tree(HASHES[:size])
    assert root == ROOTS[size] == batch_root(HASHES[:size])
    assert [list(p) for p in paths] == [reference.path(i, DATA[:size]) for i in range(size)]


def test_random_large_trees_use_logarithmic_reads() -> None:
    rng = random.Random(9162)
    data = [rng.randbytes(8) for _ in range(5000)]
    _, store = build_log(data)
    for _ in range(40):
        second = rng.randint(1, len(data))
        first = rng.randint(1, second)
        index = rng.randrange(second)
        store.reads = 0
        proof = inclusion_proof(index, second, store.get_nodes)
        assert store.reads <= 2 * second.bit_length()
        assert list(proof.hashes) == reference.path(index, data[:second])
        root2 = reference.mth(data[:second])
        verify_inclusion(leaf_hash(data[index]), proof, root2)
        store.reads = 0
        cons = consistency_proof(first, second, store.get_nodes)
        assert store.reads <= 2 * second.bit_length() + 1
        assert cons == ConsistencyProof(first, second, tuple(reference.proof(first, data[:second])))
        verify_consistency(cons, reference.mth(data[:first]), root2)


def test_appending_in_chunks_persists_every_perfect_node_once() -> None:
    rng = random.Random(6962)
    tree, seen = LogTree(), {}
    i = 0
    while i < MAX:
        step = rng.randint(1, 9)
        for node, h in tree.append_leaf_hashes(HASHES[i : i + step]):
            assert node not in seen
            seen[node] = h
        i = min(MAX, i + step)
    assert seen == STORE.nodes
    for node, h in seen.items():
        first = node.index << node.level
        assert h == reference.mth(DATA[first : first + (1 << node.level)])
    assert len(seen) == 2 * MAX - MAX.bit_count()


def test_appending_runs_of_any_length_builds_the_reference_tree() -> None:
    # Runs long enough to complete nodes many levels up in one append, starting at odd
    # and even sizes, given as lists and as one blob (FixedRuns).
    from veriot.core.columns import FixedRuns

    rng = random.Random(9162)
    data = [f"run leaf {i}".encode() for i in range(1500)]
    hashes = [leaf_hash(x) for x in data]
    tree, seen = LogTree(), {}
    size = 0
    while size < len(data):
        step = min(len(data) - size, rng.choice([1, 2, 3, 63, 64, 65, 127, 300]))
        run = hashes[size : size + step]
        given = FixedRuns(b"".join(run), 32) if rng.random() < 0.5 else run
        for node, h in tree.append_leaf_hashes(given):
            assert node not in seen
            seen[node] = h
        size += step
        assert tree.size == size
        assert tree.root() == reference.mth(data[:size]), size
    assert len(seen) == 2 * size - size.bit_count()
    for node, h in rng.sample(list(seen.items()), 200):
        first = node.index << node.level
        assert h == reference.mth(data[first : first + (1 << node.level)])


@pytest.mark.parametrize(
    "hashes",
    [
        [b"\x01" * 31],
        [b"\x01" * 32, b"\x02" * 33],
        [b"\x01" * 31, b"\x02" * 33],  # the right total length, but two bad hashes
    ],
)
def test_a_leaf_hash_that_is_not_32_bytes_is_refused(hashes: list[bytes]) -> None:
    tree = LogTree()
    with pytest.raises(InputError, match="a leaf hash is 32 bytes"):
        tree.append_leaf_hashes(hashes)
    assert tree.size == 0
    with pytest.raises(InputError, match="a leaf hash is 32 bytes"):
        batch_root(hashes)
