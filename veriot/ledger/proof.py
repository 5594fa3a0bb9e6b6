"""Building and checking RFC 9162 inclusion and consistency proofs.

Building is plan, fetch, compute: `plan_inclusion` / `plan_consistency` / `plan_root` say
which persisted nodes a proof needs (O(log n) of them), the caller's `fetch` returns their
hashes, and `ProofPlan.assemble` hashes the ephemeral nodes of the ragged right edge from
them. Checking follows the algorithms of RFC 9162 sections 2.1.3.2 and 2.1.4.2.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from veriot.core.errors import ProofError, RootMismatchError
from veriot.core.types import ConsistencyProof, InclusionProof, NodeId
from veriot.ledger.compact import Fetch, check_fetched, compact_range_ids, fold_right
from veriot.ledger.hashing import EMPTY_ROOT, HASH_SIZE, NODE_PREFIX, node_hash

_sha256 = hashlib.sha256


@dataclass(frozen=True, slots=True)
class ProofPlan:
    """The persisted nodes a proof is made of, in proof order.

    `ids[rehash_begin:rehash_end]` (when longer than one) are the perfect subtrees under
    one ephemeral node, smallest first; `assemble` replaces them by that node's hash.
    """

    ids: tuple[NodeId, ...]
    rehash_begin: int = 0
    rehash_end: int = 0

    def assemble(self, hashes: Sequence[bytes]) -> tuple[bytes, ...]:
        """The proof hashes from the fetched hashes of `ids` (same order).
        Raises StoreError when `hashes` does not fit `ids`."""
        check_fetched(self.ids, hashes)
        b, e = self.rehash_begin, self.rehash_end
        if e - b < 2:
            return tuple(hashes)
        # Stored smallest first; fold_right wants them left to right.
        ephemeral = fold_right(list(reversed(hashes[b:e])))
        return (*hashes[:b], ephemeral, *hashes[e:])


def _path_plan(index: int, level: int, size: int) -> ProofPlan:
    """Plan of the inclusion path of node (level, index) in the tree of `size` leaves.

    Requires the node to be complete in that tree: (index + 1) << level <= size.
    """
    # The fork is the highest complete ancestor of the node: where its path from the root
    # parts from the path to leaf `size`. Below it every sibling is a persisted node; its
    # sibling is ephemeral (covers [end, size)); above it the path climbs the right edge,
    # whose left siblings are the compact range of [0, begin).
    inner = (index ^ (size >> level)).bit_length() - 1
    fork_level = level + inner
    fork_index = index >> inner
    ids = [NodeId(lvl, (index >> (lvl - level)) ^ 1) for lvl in range(level, fork_level)]
    begin = len(ids)
    ids.extend(NodeId(lvl, (size >> lvl) - 1) for lvl in range(fork_level) if (size >> lvl) & 1)
    end = len(ids)
    left = fork_index << fork_level
    ids.extend(reversed(compact_range_ids(left)))
    return ProofPlan(tuple(ids), begin, end)


def _check_sizes(index: int, size: int) -> None:
    if not 0 <= index < size:
        raise ProofError(
            f"leaf index {index} is outside a tree of size {size}; want 0 <= index < size"
        )


def plan_inclusion(index: int, size: int) -> ProofPlan:
    """Nodes of the inclusion proof of leaf `index` in the tree of `size` leaves.
    Requires 0 <= index < size; raises ProofError otherwise."""
    _check_sizes(index, size)
    return _path_plan(index, 0, size)


def plan_consistency(first: int, second: int) -> ProofPlan:
    """Nodes of the consistency proof between trees of `first` and `second` leaves.
    Requires 0 <= first <= second; the proof is empty when first is 0 or equals second."""
    if not 0 <= first <= second:
        raise ProofError(
            f"consistency needs 0 <= first <= second; got first {first}, second {second}"
        )
    if first == 0 or first == second:
        return ProofPlan(())
    # The largest perfect subtree ending at `first`: the proof is its inclusion path in the
    # second tree, preceded by the subtree itself unless it is the whole first tree.
    level = (first & -first).bit_length() - 1
    index = (first - 1) >> level
    plan = _path_plan(index, level, second)
    if index == 0:
        return plan
    return ProofPlan((NodeId(level, index), *plan.ids), plan.rehash_begin + 1, plan.rehash_end + 1)


def plan_root(size: int) -> list[NodeId]:
    """Nodes whose hashes fold into the root of the tree of `size` leaves (size >= 0)."""
    return compact_range_ids(size)


def inclusion_proof(index: int, size: int, fetch: Fetch) -> InclusionProof:
    """The inclusion proof of leaf `index` in the tree of `size` leaves, from stored nodes.
    Requires 0 <= index < size <= stored size. Raises ProofError, MissingNodeError."""
    plan = plan_inclusion(index, size)
    hashes = fetch(plan.ids) if plan.ids else []
    return InclusionProof(index=index, size=size, hashes=plan.assemble(hashes))


def consistency_proof(first: int, second: int, fetch: Fetch) -> ConsistencyProof:
    """The consistency proof between trees of `first` and `second` leaves, from stored
    nodes. Requires 0 <= first <= second <= stored size. Raises ProofError, MissingNodeError."""
    plan = plan_consistency(first, second)
    hashes = fetch(plan.ids) if plan.ids else []
    return ConsistencyProof(first=first, second=second, hashes=plan.assemble(hashes))


def root_at(size: int, fetch: Fetch) -> bytes:
    """The root of the tree of the first `size` leaves, from stored nodes (size >= 0)."""
    ids = plan_root(size)
    if not ids:
        return EMPTY_ROOT
    hashes = fetch(ids)
    check_fetched(ids, hashes)
    return fold_right(hashes)


def _check_hashes(what: str, hashes: Sequence[bytes]) -> None:
    for i, h in enumerate(hashes):
        if len(h) != HASH_SIZE:
            raise ProofError(f"{what} hash {i} is {len(h)} bytes; want {HASH_SIZE}")


def _check_hash(what: str, h: bytes) -> None:
    if len(h) != HASH_SIZE:
        raise ProofError(f"{what} is {len(h)} bytes; want {HASH_SIZE}")


def inclusion_proof_length(index: int, size: int) -> int:
    """Number of hashes in the inclusion proof of leaf `index` (requires 0 <= index < size)."""
    _check_sizes(index, size)
    inner = (index ^ (size - 1)).bit_length()
    return inner + (index >> inner).bit_count()


def consistency_proof_length(first: int, second: int) -> int:
    """Number of hashes in the consistency proof between sizes (0 <= first <= second)."""
    if not 0 <= first <= second:
        raise ProofError(
            f"consistency needs 0 <= first <= second; got first {first}, second {second}"
        )
    if first == 0 or first == second:
        return 0
    shift = (first & -first).bit_length() - 1
    inner = ((first - 1) ^ (second - 1)).bit_length()
    border = ((first - 1) >> inner).bit_count()
    own = 0 if first == 1 << shift else 1
    return own + inner - shift + border


def root_from_inclusion(leaf_hash: bytes, proof: InclusionProof) -> bytes:
    """The root that `proof` proves `leaf_hash` to be leaf `proof.index` of.

    Raises ProofError when the proof has the wrong shape for its index and size.
    """
    return root_from_path(leaf_hash, proof.index, proof.size, proof.hashes)


def root_from_path(leaf_hash: bytes, index: int, size: int, path: Sequence[bytes]) -> bytes:
    """`root_from_inclusion` without building an InclusionProof (the batch hot path)."""
    want = inclusion_proof_length(index, size)
    if len(path) != want:
        raise ProofError(
            f"inclusion proof of leaf {index} in a tree of size {size} has {len(path)} "
            f"hashes; want {want}"
        )
    if len(leaf_hash) != HASH_SIZE:
        _check_hash("leaf hash", leaf_hash)
    if any(len(h) != HASH_SIZE for h in path):
        _check_hashes("inclusion proof", path)
    # RFC 9162 section 2.1.3.2; node_hash inlined, as this runs once per batched reading.
    sha, prefix = _sha256, NODE_PREFIX
    fn, sn, r = index, size - 1, leaf_hash
    for p in path:
        if fn & 1 or fn == sn:
            r = sha(prefix + p + r).digest()
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = sha(prefix + r + p).digest()
        fn >>= 1
        sn >>= 1
    return r


def verify_inclusion(leaf_hash: bytes, proof: InclusionProof, root: bytes) -> None:
    """Checks that `leaf_hash` is leaf `proof.index` of the tree of `proof.size` leaves
    whose root is `root`. Raises ProofError (bad shape) or RootMismatchError."""
    _check_hash("root", root)
    calculated = root_from_inclusion(leaf_hash, proof)
    if calculated != root:
        raise RootMismatchError(expected=root, calculated=calculated)


def roots_from_consistency(proof: ConsistencyProof, first_root: bytes) -> tuple[bytes, bytes]:
    """The (first, second) roots that `proof` links; `first_root` is needed when the first
    size is a power of two (the proof omits it). Requires 0 < first < second.
    Raises ProofError for a proof of the wrong shape."""
    first, second, path = proof.first, proof.second, list(proof.hashes)
    if not 0 < first < second:
        raise ProofError(f"want 0 < first < second; got first {first}, second {second}")
    want = consistency_proof_length(first, second)
    if len(path) != want:
        raise ProofError(
            f"consistency proof from size {first} to {second} has {len(path)} hashes; want {want}"
        )
    _check_hashes("consistency proof", path)
    # RFC 9162 section 2.1.4.2.
    if first & (first - 1) == 0:
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError(f"consistency proof from size {first} to {second} is too long")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError(f"consistency proof from size {first} to {second} is too short")
    return fr, sr


def verify_consistency(proof: ConsistencyProof, first_root: bytes, second_root: bytes) -> None:
    """Checks that the tree of `proof.second` leaves with root `second_root` extends the
    tree of `proof.first` leaves with root `first_root`.

    Raises ProofError (bad shape or sizes) or RootMismatchError (a root does not match).
    """
    first, second = proof.first, proof.second
    _check_hash("first root", first_root)
    _check_hash("second root", second_root)
    if not 0 <= first <= second:
        raise ProofError(
            f"consistency needs 0 <= first <= second; got first {first}, second {second}"
        )
    if first == second or first == 0:
        if proof.hashes:
            raise ProofError(
                f"consistency proof from size {first} to {second} must be empty; "
                f"got {len(proof.hashes)} hashes"
            )
        if first == second and first_root != second_root:
            raise RootMismatchError(expected=first_root, calculated=second_root)
        if first == 0 and first_root != EMPTY_ROOT:
            raise RootMismatchError(expected=first_root, calculated=EMPTY_ROOT)
        return
    fr, sr = roots_from_consistency(proof, first_root)
    if fr != first_root:
        raise RootMismatchError(expected=first_root, calculated=fr)
    if sr != second_root:
        raise RootMismatchError(expected=second_root, calculated=sr)
