"""Tree nodes kept in tiles: the hashes of TILE_WIDTH neighbouring nodes of one level,
concatenated in one row, as transparency logs do (cf. the tlog tiles of Go's checksum
database). An append of n leaves completes about 2n nodes but touches only about
2n / TILE_WIDTH + (levels) rows, which keeps the hot write path short.

Tile `(level, t)` holds nodes (level, t * TILE_WIDTH + j) for j = 0, 1, ... in order; its
key is `(level << 56) | t`. Nodes of a level must therefore be stored in index order
without gaps, which an append-only tree does naturally (each batch completes the next
nodes of every level). This module plans; the adapters read and write the rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from veriot.core.canonical import HASH_BYTES
from veriot.core.columns import FixedRuns
from veriot.core.errors import InputError, StoreError
from veriot.core.types import NodeId, NodeRuns

NODE_LEVEL_SHIFT: Final = 56
MAX_NODE_LEVEL: Final = 127
"""Tile keys are `(level << 56) | tile`: a signed 64-bit integer holds levels up to 127."""

TILE_WIDTH: Final = 64
"""Nodes per tile: 64 hashes are 2 KiB, small enough to stay inside one SQLite page."""


def tile_key(level: int, tile: int) -> int:
    return (level << NODE_LEVEL_SHIFT) | tile


def level_bounds(level: int) -> tuple[int, int]:
    """The smallest and largest tile key of a level (for "the last tile of level L")."""
    return level << NODE_LEVEL_SHIFT, ((level + 1) << NODE_LEVEL_SHIFT) - 1


def stored_count(key: int, length: int) -> int:
    """Nodes stored at a level whose last tile has `key` and holds `length` bytes."""
    tile = key & ((1 << NODE_LEVEL_SHIFT) - 1)
    return tile * TILE_WIDTH + length // HASH_BYTES


NodeRun = tuple[int, Sequence[bytes]]
"""The nodes of one level that a batch adds: (the first one's index, their hashes in index
order, at consecutive indices)."""


def group_by_level(nodes: Iterable[tuple[NodeId, bytes]]) -> dict[int, NodeRun]:
    """The nodes of a batch as one run per level. Raises InputError for a node outside
    the key range or a hash that is not 32 bytes, StoreError when a level's nodes are not
    consecutive (one given twice, or one missing between two others)."""
    levels = dict(nodes.levels) if isinstance(nodes, NodeRuns) else _runs_of_pairs(nodes)
    for level, (first, hashes) in levels.items():
        last = first + len(hashes) - 1
        if not 0 <= level <= MAX_NODE_LEVEL or not (first >= 0 and last < 1 << NODE_LEVEL_SHIFT):
            bad = first if first < 0 else last
            raise InputError(
                f"tree node (level {level}, index {bad}) is out of range: want "
                f"0 <= level <= {MAX_NODE_LEVEL} and 0 <= index < 2**{NODE_LEVEL_SHIFT}"
            )
        # The log tree hands each level over as a FixedRuns, which FixedRuns.of takes as
        # it is; the scan only names the culprit.
        try:
            FixedRuns.of(hashes, HASH_BYTES)
        except ValueError:
            for index, value in enumerate(hashes, first):
                if len(value) != HASH_BYTES:
                    raise InputError(
                        f"tree node (level {level}, index {index}) has a {len(value)}-byte "
                        f"hash; want {HASH_BYTES}"
                    ) from None
    return levels


def _runs_of_pairs(nodes: Iterable[tuple[NodeId, bytes]]) -> dict[int, NodeRun]:
    by_level: dict[int, list[tuple[int, bytes]]] = {}
    for node, value in nodes:
        entries = by_level.get(node.level)
        if entries is None:
            entries = by_level[node.level] = []
        entries.append((node.index, value))
    levels: dict[int, NodeRun] = {}
    for level, entries in by_level.items():
        entries.sort(key=lambda entry: entry[0])
        first = entries[0][0]
        check_level(level, first, [index for index, _ in entries])
        levels[level] = (first, [value for _, value in entries])
    return levels


def check_level(level: int, stored: int, indices: Sequence[int]) -> None:
    """Raises StoreError unless `indices` (sorted) are nodes stored, stored+1, ... of a
    level that holds `stored` nodes."""
    if list(indices) == list(range(stored, stored + len(indices))):
        return
    for offset, index in enumerate(indices):
        if index != stored + offset:
            if index < stored + offset:
                raise StoreError(f"tree node (level {level}, index {index}) is already stored")
            raise StoreError(
                f"tree node (level {level}, index {index}) would leave a gap: level {level} "
                f"holds nodes 0..{stored + offset - 1}, so the next must be {stored + offset}"
            )


def check_run(level: int, stored: int, run: NodeRun) -> None:
    """Raises StoreError unless `run` starts right after the `stored` nodes of its level."""
    first, hashes = run
    if first != stored:
        check_level(level, stored, range(first, first + len(hashes)))


@dataclass(frozen=True, slots=True)
class TileWrite:
    """Write tile `key` with the whole of `hashes`: insert when `new`, else update."""

    key: int
    hashes: bytes
    new: bool


def plan_level(level: int, last: tuple[int, bytes] | None, run: NodeRun) -> list[TileWrite]:
    """The tile writes that add the nodes of `run` to a level whose last stored tile is
    `last` (key, hashes), or which has none. Raises StoreError unless the run holds
    exactly the next nodes of the level."""
    stored = 0 if last is None else stored_count(last[0], len(last[1]))
    check_run(level, stored, run)
    blob = FixedRuns.blob_of(run[1], HASH_BYTES)
    count = len(blob) // HASH_BYTES
    writes = []
    position, index = 0, stored
    while position < count:
        tile, slot = divmod(index, TILE_WIDTH)
        take = min(TILE_WIDTH - slot, count - position)
        data = blob[position * HASH_BYTES : (position + take) * HASH_BYTES]
        if slot:
            assert last is not None and last[0] == tile_key(level, tile)
            writes.append(TileWrite(last[0], last[1] + data, new=False))
        else:
            writes.append(TileWrite(tile_key(level, tile), data, new=True))
        position += take
        index += take
    return writes


def locate(node: NodeId) -> tuple[int, int] | None:
    """(tile key, byte offset) of a node, or None when it is outside the key range."""
    if not 0 <= node.level <= MAX_NODE_LEVEL or not 0 <= node.index < 1 << NODE_LEVEL_SHIFT:
        return None
    tile, slot = divmod(node.index, TILE_WIDTH)
    return tile_key(node.level, tile), slot * HASH_BYTES
