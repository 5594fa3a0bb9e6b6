"""Properties of the log over any sizes: proofs verify, and any tampering is caught.

A proof's hashes do not bind the tree size: a proof for size n can also fit a size n' whose
path has the same shape (0 in 3 and in 4 leaves). The size is bound by the signed
checkpoint, so a changed size must fail only when it changes the proof's shape."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from veriot.core.errors import LedgerError
from veriot.core.types import ConsistencyProof, InclusionProof
from veriot.ledger.batch import batch_root
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

MAX = 300
DATA = [b"leaf %d" % i for i in range(MAX)]
HASHES = [leaf_hash(d) for d in DATA]
_, STORE = build_log(DATA)
FETCH = STORE.get_nodes


@st.composite
def index_and_size(draw: st.DrawFn) -> tuple[int, int]:
    size = draw(st.integers(1, MAX))
    return draw(st.integers(0, size - 1)), size


@st.composite
def two_sizes(draw: st.DrawFn) -> tuple[int, int]:
    second = draw(st.integers(2, MAX))
    return draw(st.integers(1, second - 1)), second


def flip(hashes: tuple[bytes, ...], which: int, byte: int, bit: int) -> tuple[bytes, ...]:
    k = which % len(hashes)
    h = bytearray(hashes[k])
    h[byte] ^= 1 << bit
    return (*hashes[:k], bytes(h), *hashes[k + 1 :])


@settings(max_examples=300, deadline=None)
@given(index_and_size())
def test_every_inclusion_proof_verifies(case: tuple[int, int]) -> None:
    index, size = case
    verify_inclusion(HASHES[index], inclusion_proof(index, size, FETCH), root_at(size, FETCH))


@settings(max_examples=300, deadline=None)
@given(
    index_and_size(),
    st.sampled_from(["hash", "index", "size", "leaf", "drop", "extra"]),
    st.integers(0, 63),
    st.integers(0, 31),
    st.integers(0, 7),
    st.integers(1, MAX),
)
def test_any_tampered_inclusion_fails(
    case: tuple[int, int], what: str, which: int, byte: int, bit: int, other: int
) -> None:
    index, size = case
    proof = inclusion_proof(index, size, FETCH)
    root, leaf = root_at(size, FETCH), HASHES[index]
    if what == "hash":
        if not proof.hashes:
            return
        proof = InclusionProof(index, size, flip(proof.hashes, which, byte, bit))
    elif what == "index":
        proof = InclusionProof((index + other) % (size + 1), size, proof.hashes)
        if proof.index == index:
            return
    elif what == "size":
        new_size = other if other != size else size + 1
        if index < new_size and inclusion_proof_length(index, new_size) == len(proof.hashes):
            return  # same shape: only the checkpoint's signature over the size can tell
        proof = InclusionProof(index, new_size, proof.hashes)
    elif what == "leaf":
        leaf = flip((leaf,), 0, byte, bit)[0]
    elif what == "drop":
        if not proof.hashes:
            return
        proof = InclusionProof(index, size, proof.hashes[:-1])
    else:
        proof = InclusionProof(index, size, (*proof.hashes, HASHES[other - 1]))
    with pytest.raises(LedgerError):
        verify_inclusion(leaf, proof, root)


@settings(max_examples=300, deadline=None)
@given(two_sizes())
def test_every_consistency_proof_verifies(case: tuple[int, int]) -> None:
    first, second = case
    proof = consistency_proof(first, second, FETCH)
    verify_consistency(proof, root_at(first, FETCH), root_at(second, FETCH))


@settings(max_examples=300, deadline=None)
@given(
    two_sizes(),
    st.sampled_from(["hash", "first", "second", "root1", "root2", "drop"]),
    st.integers(0, 127),
    st.integers(0, 31),
    st.integers(0, 7),
    st.integers(1, MAX),
)
def test_any_tampered_consistency_fails(
    case: tuple[int, int], what: str, which: int, byte: int, bit: int, other: int
) -> None:
    first, second = case
    proof = consistency_proof(first, second, FETCH)
    r1, r2 = root_at(first, FETCH), root_at(second, FETCH)
    hs = proof.hashes
    if what == "hash":
        proof = ConsistencyProof(first, second, flip(hs, which, byte, bit))
    elif what == "first":
        if other == first:
            return
        proof = ConsistencyProof(other, second, hs)
    elif what == "second":
        if other == second or (
            first <= other and consistency_proof_length(first, other) == len(hs)
        ):
            return  # same shape: only the checkpoint's signature over the size can tell
        proof = ConsistencyProof(first, other, hs)
    elif what == "root1":
        r1 = flip((r1,), 0, byte, bit)[0]
    elif what == "root2":
        r2 = flip((r2,), 0, byte, bit)[0]
    else:
        proof = ConsistencyProof(first, second, hs[:-1])
    with pytest.raises(LedgerError):
        verify_consistency(proof, r1, r2)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(1, 40), min_size=1, max_size=12))
def test_root_does_not_depend_on_how_appends_are_chunked(chunks: list[int]) -> None:
    tree, pos = LogTree(), 0
    for n in chunks:
        tree.append_leaf_hashes(HASHES[pos : pos + n])
        pos = min(MAX, pos + n)
    assert tree.root() == reference.mth(DATA[:pos])
    if pos:
        assert tree.root() == batch_root(HASHES[:pos]) == root_at(pos, FETCH)
