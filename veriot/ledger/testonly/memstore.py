"""An in-memory node store: a dict behind the `fetch` signature that proofs use."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from veriot.core.errors import MissingNodeError
from veriot.core.types import NodeId
from veriot.ledger.compact import LogTree
from veriot.ledger.hashing import leaf_hash


class MemoryNodes:
    """A dict of persisted nodes with a `get_nodes` that counts its reads."""

    def __init__(self) -> None:
        self.nodes: dict[NodeId, bytes] = {}
        self.reads = 0

    def put(self, nodes: Iterable[tuple[NodeId, bytes]]) -> None:
        self.nodes.update(nodes)

    def get_nodes(self, ids: Sequence[NodeId]) -> list[bytes]:
        self.reads += len(ids)
        try:
            return [self.nodes[i] for i in ids]
        except KeyError as exc:
            node: NodeId = exc.args[0]
            raise MissingNodeError(node.level, node.index) from None


def build_log(leaves: Sequence[bytes]) -> tuple[LogTree, MemoryNodes]:
    """A tree over the leaf inputs `leaves` and a store holding every node it persisted."""
    tree, store = LogTree(), MemoryNodes()
    store.put(tree.append_leaf_hashes([leaf_hash(d) for d in leaves]))
    return tree, store
