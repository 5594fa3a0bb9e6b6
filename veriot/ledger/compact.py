"""The compact range: the right edge of the log tree, kept in memory.

A tree of `size` leaves is covered by one perfect subtree per set bit of `size`, largest
first: for size 7 (0b111) the roots of leaves [0, 4), [4, 6) and [6, 7). Holding those
hashes is enough to append leaves and compute the root; every node that becomes complete
on the way is handed back so the caller can persist it (see docs/log.md).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Final

from veriot.core.columns import FixedRuns
from veriot.core.errors import InputError, StoreError
from veriot.core.types import NodeId, NodeRuns
from veriot.ledger.digests import chunk_digests
from veriot.ledger.hashing import EMPTY_ROOT, HASH_SIZE, NODE_PREFIX, hash_blob

Fetch = Callable[[Sequence[NodeId]], list[bytes]]
"""Returns the stored hashes of the given nodes, in order (`LogStore.get_nodes`).
Raises MissingNodeError for a node that is not stored."""

_sha256: Final = hashlib.sha256


def compact_range_ids(size: int) -> list[NodeId]:
    """Ids of the perfect subtrees covering leaves [0, size), largest (leftmost) first.

    Requires size >= 0. There is one node per set bit of `size`, so at most 64.
    """
    if size < 0:
        raise InputError(f"tree size must be >= 0; got {size}")
    return [
        NodeId(level, (size >> level) - 1)
        for level in range(size.bit_length() - 1, -1, -1)
        if (size >> level) & 1
    ]


def fold_right(hashes: Sequence[bytes]) -> bytes:
    """Hashes a run of perfect subtree roots, ordered left to right, into the root of the
    subtree they cover (RFC 9162 merges the smallest, rightmost ones first).

    Requires at least one hash.
    """
    acc = hashes[-1]
    for left in reversed(hashes[:-1]):
        acc = _sha256(NODE_PREFIX + left + acc).digest()
    return acc


def check_fetched(ids: Sequence[NodeId], hashes: Sequence[bytes]) -> None:
    """Raises StoreError unless `hashes` has one 32-byte hash per id."""
    if len(hashes) != len(ids):
        raise StoreError(f"the node store returned {len(hashes)} hashes for {len(ids)} node ids")
    for node, h in zip(ids, hashes, strict=True):
        if len(h) != HASH_SIZE:
            raise StoreError(
                f"stored node (level {node.level}, index {node.index}) is {len(h)} bytes; "
                f"want {HASH_SIZE}"
            )


class LogTree:
    """The right edge of an append-only RFC 9162 tree.

    `hashes` are the roots of the perfect subtrees of `compact_range_ids(size)`, in that
    order. Appending returns every node that became complete so it can be persisted.
    """

    __slots__ = ("_hashes", "_size")

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        """Requires len(hashes) == popcount(size) and each hash to be 32 bytes."""
        if size < 0:
            raise InputError(f"tree size must be >= 0; got {size}")
        want = size.bit_count()
        if len(hashes) != want:
            raise InputError(
                f"a tree of size {size} has {want} right-edge hashes; got {len(hashes)}"
            )
        for h in hashes:
            if len(h) != HASH_SIZE:
                raise InputError(f"a right-edge hash is {HASH_SIZE} bytes; got {len(h)}")
        self._size = size
        self._hashes = list(hashes)

    @classmethod
    def restore(cls, size: int, fetch: Fetch) -> LogTree:
        """Rebuilds the right edge of the tree of `size` leaves from stored nodes
        (popcount(size) node reads). Raises MissingNodeError or StoreError."""
        ids = compact_range_ids(size)
        hashes = fetch(ids) if ids else []
        check_fetched(ids, hashes)
        return cls(size, hashes)

    @property
    def size(self) -> int:
        return self._size

    @property
    def hashes(self) -> tuple[bytes, ...]:
        """The right-edge hashes, in the order of `compact_range_ids(size)`."""
        return tuple(self._hashes)

    def root(self) -> bytes:
        """The RFC 9162 root of the current tree (EMPTY_ROOT when size is 0)."""
        if not self._hashes:
            return EMPTY_ROOT
        return fold_right(self._hashes)

    def append_leaf_hashes(self, leaf_hashes: Sequence[bytes]) -> NodeRuns:
        """Appends leaves by their leaf hashes and returns every node that became complete,
        the level-0 nodes of the new leaves included: on each level a run of consecutive
        nodes, starting at (level, old size >> level), as a FixedRuns.

        Requires every hash to be 32 bytes; the tree is unchanged when one is not.
        """
        blob = hash_blob(leaf_hashes)
        start = self._size
        end = start + len(blob) // HASH_SIZE
        old = self._by_level()
        # Level by level: the new nodes of a level, with the old right-edge node before
        # them when the first has no left sibling among them, pair up into the new nodes
        # of the level above, all hashed in one call.
        levels: dict[int, tuple[int, Sequence[bytes]]] = {}
        level, first, run = 0, start, blob
        while run:
            levels[level] = (first, FixedRuns(run, HASH_SIZE))
            if first & 1:
                run = old[level] + run
            pairs = len(run) // (2 * HASH_SIZE)
            run = chunk_digests(NODE_PREFIX, run[: pairs * 2 * HASH_SIZE], 2 * HASH_SIZE)
            first >>= 1
            level += 1
        # The new right edge: on each level of a set bit of `end`, its last node, new or old.
        edge = []
        for node in compact_range_ids(end):
            got = levels.get(node.level)
            edge.append(got[1][-1] if got is not None else old[node.level])
        self._size = end
        self._hashes = edge
        return NodeRuns(levels)

    def _by_level(self) -> dict[int, bytes]:
        """The right-edge hashes by the level of their subtree."""
        ids = compact_range_ids(self._size)
        return {node.level: h for node, h in zip(ids, self._hashes, strict=True)}
