"""Device batch trees: a device signs once over the RFC 9162 root of a batch of readings.

Leaf i of a batch is `leaf_hash(reading_message(reading_i))`; the tree is the same RFC 9162
tree as the log's, so a batch path is checked exactly like a log inclusion proof.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Final

from veriot.core.errors import InputError
from veriot.core.types import BatchAuth, BatchSeal
from veriot.ledger.hashing import HASH_SIZE, NODE_PREFIX
from veriot.ledger.proof import root_from_path

_sha256: Final = hashlib.sha256


def _levels(leaf_hashes: Sequence[bytes]) -> list[list[bytes]]:
    """Every level of the tree, leaves first. An odd last node is carried up unchanged,
    which builds the same tree as RFC 9162's split at the largest power of two."""
    if not leaf_hashes:
        raise InputError("a batch has at least one reading; got 0")
    for h in leaf_hashes:
        if len(h) != HASH_SIZE:
            raise InputError(f"a leaf hash is {HASH_SIZE} bytes; got {len(h)}")
    sha, prefix = _sha256, NODE_PREFIX
    level = list(leaf_hashes)
    levels = [level]
    while len(level) > 1:
        up = [sha(prefix + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)]
        if len(level) & 1:
            up.append(level[-1])
        levels.append(up)
        level = up
    return levels


def batch_root(leaf_hashes: Sequence[bytes]) -> bytes:
    """The RFC 9162 root of a non-empty batch (n - 1 hashes). Raises InputError."""
    return _levels(leaf_hashes)[-1][0]


def batch_tree(leaf_hashes: Sequence[bytes]) -> tuple[bytes, list[tuple[bytes, ...]]]:
    """The root of a non-empty batch and the inclusion path of every leaf, in one pass.

    Raises InputError for an empty batch or a hash that is not 32 bytes.
    """
    levels = _levels(leaf_hashes)
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
