"""Tree nodes in tiles: planning writes, refusing gaps and duplicates, locating nodes."""

from __future__ import annotations

import pytest

from veriot.core.errors import InputError, StoreError
from veriot.core.types import NodeId, NodeRuns
from veriot.storage import tiles
from veriot.storage.tiles import TILE_WIDTH, TileWrite


def h(i: int) -> bytes:
    return i.to_bytes(32, "big")


def run(first: int, count: int) -> tiles.NodeRun:
    return first, [h(i) for i in range(first, first + count)]


def test_the_first_nodes_of_a_level_open_new_tiles() -> None:
    writes = tiles.plan_level(3, None, run(0, TILE_WIDTH + 5))
    key0, key1 = tiles.tile_key(3, 0), tiles.tile_key(3, 1)
    assert writes == [
        TileWrite(key0, b"".join(h(i) for i in range(TILE_WIDTH)), new=True),
        TileWrite(key1, b"".join(h(i) for i in range(TILE_WIDTH, TILE_WIDTH + 5)), new=True),
    ]


def test_a_partial_tile_is_rewritten_whole() -> None:
    key = tiles.tile_key(0, 2)
    last = (key, b"".join(h(i) for i in range(2 * TILE_WIDTH, 2 * TILE_WIDTH + 10)))
    writes = tiles.plan_level(0, last, run(2 * TILE_WIDTH + 10, 3))
    assert writes == [TileWrite(key, last[1] + h(138) + h(139) + h(140), new=False)]


def test_a_full_last_tile_is_left_alone() -> None:
    last = (tiles.tile_key(1, 0), b"".join(h(i) for i in range(TILE_WIDTH)))
    writes = tiles.plan_level(1, last, run(TILE_WIDTH, 1))
    assert writes == [TileWrite(tiles.tile_key(1, 1), h(TILE_WIDTH), new=True)]


@pytest.mark.parametrize(
    ("nodes", "message"),
    [(run(4, 2), "already stored"), (run(6, 2), "would leave a gap")],
)
def test_a_run_must_continue_its_level(nodes: tiles.NodeRun, message: str) -> None:
    tiles.check_run(0, 5, run(5, 2))
    with pytest.raises(StoreError, match=message):
        tiles.check_run(0, 5, nodes)
    with pytest.raises(StoreError, match=message):
        tiles.plan_level(0, (tiles.tile_key(0, 0), b"".join(map(h, range(5)))), nodes)


@pytest.mark.parametrize(
    ("indices", "message"),
    [([5, 5], "already stored"), ([5, 7], "would leave a gap")],
)
def test_a_level_of_a_batch_holds_each_node_once_without_gaps(
    indices: list[int], message: str
) -> None:
    with pytest.raises(StoreError, match=message):
        tiles.group_by_level([(NodeId(0, i), h(i)) for i in indices])


def test_grouping_sorts_each_level_and_checks_hashes() -> None:
    nodes = [(NodeId(0, 1), h(1)), (NodeId(1, 0), h(9)), (NodeId(0, 0), h(0))]
    assert tiles.group_by_level(nodes) == {0: (0, [h(0), h(1)]), 1: (0, [h(9)])}
    with pytest.raises(InputError):
        tiles.group_by_level([(NodeId(0, 0), b"short")])
    with pytest.raises(InputError):
        tiles.group_by_level([(NodeId(128, 0), h(0))])
    with pytest.raises(InputError):
        tiles.group_by_level([(NodeId(0, 2**56), h(0))])


def test_runs_from_the_log_tree_are_checked_like_pairs() -> None:
    runs = NodeRuns({0: (4, [h(4), h(5)]), 1: (2, [h(9)])})
    assert tiles.group_by_level(runs) == tiles.group_by_level(list(runs))
    assert list(runs) == [(NodeId(0, 4), h(4)), (NodeId(0, 5), h(5)), (NodeId(1, 2), h(9))]
    with pytest.raises(InputError, match="5-byte hash; want 32"):
        tiles.group_by_level(NodeRuns({0: (0, [h(0), b"short"])}))
    # Two bad hashes whose lengths add up to two good ones are each refused.
    with pytest.raises(InputError, match="index 0\\) has a 31-byte hash; want 32"):
        tiles.group_by_level(NodeRuns({0: (0, [b"\x01" * 31, b"\x02" * 33])}))
    with pytest.raises(InputError, match="out of range"):
        tiles.group_by_level(NodeRuns({0: (2**56 - 1, [h(0), h(1)])}))


def test_locate_and_stored_count_agree() -> None:
    key, offset = tiles.locate(NodeId(5, 3 * TILE_WIDTH + 7)) or (0, 0)
    assert key == tiles.tile_key(5, 3) and offset == 7 * 32
    assert tiles.stored_count(key, 8 * 32) == 3 * TILE_WIDTH + 8
    assert tiles.locate(NodeId(-1, 0)) is None
    assert tiles.locate(NodeId(0, 2**56)) is None
    low, high = tiles.level_bounds(127)
    assert low <= tiles.tile_key(127, 2**56 - 1) == high < 2**63
