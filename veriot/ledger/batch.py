"""Device batch trees: a device signs once over the RFC 9162 root of a batch of readings.

Leaf i of a batch is `leaf_hash(reading_message(reading_i))`; the tree is the same RFC 9162
tree as the log's, so a batch path is checked exactly like a log inclusion proof.
"""

from __future__ import annotations

from collections.abc import Sequence

from veriot.core.errors import InputError
from veriot.core.types import BatchAuth, BatchSeal
from veriot.ledger.digests import chunk_digests
from veriot.ledger.hashing import HASH_SIZE, NODE_PREFIX, hash_blob
from veriot.ledger.proof import root_from_path


def _levels(leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """Every level of the tree, leaves first, each as one blob of 32-byte hashes. An odd
    last node is carried up unchanged, which builds the same tree as RFC 9162's split at
    the largest power of two. Each level is hashed in one call (veriot.ledger.digests)."""
    if not leaf_hashes:
        raise InputError("a batch has at least one reading; got 0")
    level = hash_blob(leaf_hashes)
    levels = [level]
    pair = 2 * HASH_SIZE
    while len(level) > HASH_SIZE:
        whole = len(level) // pair * pair
        up = chunk_digests(NODE_PREFIX, level[:whole], pair)
        if whole < len(level):
            up += level[whole:]
        levels.append(up)
        level = up
    return levels


def batch_root(leaf_hashes: Sequence[bytes]) -> bytes:
    """The RFC 9162 root of a non-empty batch (n - 1 hashes). Raises InputError."""
    return _levels(leaf_hashes)[-1]


def batch_tree(leaf_hashes: Sequence[bytes]) -> tuple[bytes, list[tuple[bytes, ...]]]:
    """The root of a non-empty batch and the inclusion path of every leaf, in one pass.

    Raises InputError for an empty batch or a hash that is not 32 bytes.
    """
    levels = [
        [blob[i : i + HASH_SIZE] for i in range(0, len(blob), HASH_SIZE)]
        for blob in _levels(leaf_hashes)
    ]
    # Built from the root down: a node's path is its sibling followed by its parent's
    # path, so siblings share their parent's tuple rather than each walking every level.
    # A node without a sibling was carried up: it adds nothing to the path.
    paths: list[tuple[bytes, ...]] = [()]
    for level in reversed(levels[:-1]):
        up, n = paths, len(level)
        paths = [(level[j ^ 1],) + up[j >> 1] if j ^ 1 < n else up[j >> 1] for j in range(n)]
    return levels[-1][0], paths


def batch_root_from_path(leaf_hash: bytes, index: int, size: int, path: Sequence[bytes]) -> bytes:
    """The batch root that `path` proves `leaf_hash` to be leaf `index` of, in a batch of
    `size`. Requires 0 <= index < size; raises ProofError for a path of the wrong shape."""
    return root_from_path(leaf_hash, index, size, path)


def member_auth(seal: BatchSeal, position: int) -> BatchAuth:
    """The BatchAuth of member `position` of the sealed batch, its path derived from the
    seal's leaves (n - 1 hashes). Requires 0 <= position < seal.size; raises InputError."""
    if not 0 <= position < seal.size:
        raise InputError(f"position {position} is outside a batch of {seal.size}")
    root, paths = batch_tree(seal.leaves)
    if root != seal.root:
        raise InputError(f"seal leaves lead to root {root.hex()}, not {seal.root.hex()}")
    return BatchAuth(seal.root, seal.size, position, paths[position], seal.signature)
