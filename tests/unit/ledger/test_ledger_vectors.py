"""The published Certificate Transparency / transparency-dev test vectors (see the JSON
files in tests/vectors/ledger/ for their sources)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from veriot.core.types import ConsistencyProof, InclusionProof, NodeId
from veriot.ledger.compact import LogTree
from veriot.ledger.hashing import EMPTY_ROOT, leaf_hash, leaf_hashes, node_hash
from veriot.ledger.proof import (
    consistency_proof,
    inclusion_proof,
    plan_consistency,
    plan_inclusion,
    root_at,
    verify_consistency,
    verify_inclusion,
)
from veriot.ledger.testonly.memstore import build_log

VECTORS = Path(__file__).parents[2] / "vectors" / "ledger"
CT: dict[str, Any] = json.loads((VECTORS / "ct_8leaf.json").read_text())
PLANS: dict[str, Any] = json.loads((VECTORS / "proof_nodes.json").read_text())
LEAVES = [bytes.fromhex(x) for x in CT["leaves"]]
ROOTS = [bytes.fromhex(x) for x in CT["roots"]]


def hexes(xs: list[str]) -> tuple[bytes, ...]:
    return tuple(bytes.fromhex(x) for x in xs)


@pytest.mark.parametrize("case", CT["hasher"], ids=lambda c: c["desc"])
def test_hasher_vectors(case: dict[str, str]) -> None:
    if case["kind"] == "empty":
        got = EMPTY_ROOT
    elif case["kind"] == "leaf":
        got = leaf_hash(bytes.fromhex(case["data"]))
    else:
        got = node_hash(bytes.fromhex(case["left"]), bytes.fromhex(case["right"]))
    assert got.hex() == case["want"]


@pytest.mark.parametrize("prefix_bytes", [0, 1, 63, 64, 65, 200])
def test_leaf_hashes_of_a_shared_prefix_are_each_leaf_hash(prefix_bytes: int) -> None:
    leaves = [case for case in CT["hasher"] if case["kind"] == "leaf"]
    prefix = bytes(i % 251 for i in range(prefix_bytes))
    tails = [bytes.fromhex(case["data"]) for case in leaves] + [b"", b"x" * 300]
    got = leaf_hashes(prefix, tails)
    assert got == b"".join(leaf_hash(prefix + tail) for tail in tails)
    assert leaf_hashes(b"", [bytes.fromhex(c["data"]) for c in leaves]) == b"".join(
        bytes.fromhex(c["want"]) for c in leaves
    )


def test_every_persisted_node_matches_the_published_node_hashes() -> None:
    _, store = build_log(LEAVES)
    want = {
        NodeId(level, index): bytes.fromhex(h)
        for level, row in enumerate(CT["node_hashes"])
        for index, h in enumerate(row)
    }
    assert store.nodes == want


@pytest.mark.parametrize("size", range(9))
def test_roots_of_every_prefix(size: int) -> None:
    tree, _ = build_log(LEAVES[:size])
    assert tree.root() == ROOTS[size]
    _, full = build_log(LEAVES)
    assert root_at(size, full.get_nodes) == ROOTS[size]


@pytest.mark.parametrize("case", CT["inclusion_proofs"], ids=lambda c: f"{c['index']}/{c['size']}")
def test_inclusion_vectors(case: dict[str, Any]) -> None:
    _, store = build_log(LEAVES)
    want = InclusionProof(case["index"], case["size"], hexes(case["hashes"]))
    assert inclusion_proof(case["index"], case["size"], store.get_nodes) == want
    verify_inclusion(leaf_hash(LEAVES[case["index"]]), want, ROOTS[case["size"]])


@pytest.mark.parametrize(
    "case", CT["consistency_proofs"], ids=lambda c: f"{c['first']}/{c['second']}"
)
def test_consistency_vectors(case: dict[str, Any]) -> None:
    _, store = build_log(LEAVES)
    want = ConsistencyProof(case["first"], case["second"], hexes(case["hashes"]))
    assert consistency_proof(case["first"], case["second"], store.get_nodes) == want
    verify_consistency(want, ROOTS[case["first"]], ROOTS[case["second"]])


def _check_plan(got_ids: tuple[NodeId, ...], begin: int, end: int, case: dict[str, Any]) -> None:
    assert got_ids == tuple(NodeId(lvl, idx) for lvl, idx in case["ids"])
    rehash = [begin, end] if end - begin > 1 else None
    assert rehash == case.get("rehash")


@pytest.mark.parametrize("case", PLANS["inclusion"], ids=lambda c: f"{c['index']}/{c['size']}")
def test_inclusion_plans_read_the_published_nodes(case: dict[str, Any]) -> None:
    plan = plan_inclusion(case["index"], case["size"])
    _check_plan(plan.ids, plan.rehash_begin, plan.rehash_end, case)


@pytest.mark.parametrize("case", PLANS["consistency"], ids=lambda c: f"{c['first']}/{c['second']}")
def test_consistency_plans_read_the_published_nodes(case: dict[str, Any]) -> None:
    plan = plan_consistency(case["first"], case["second"])
    _check_plan(plan.ids, plan.rehash_begin, plan.rehash_end, case)


def test_restored_tree_continues_with_the_same_roots() -> None:
    _, store = build_log(LEAVES[:5])
    tree = LogTree.restore(5, store.get_nodes)
    tree.append_leaf_hashes([leaf_hash(d) for d in LEAVES[5:]])
    assert tree.root() == ROOTS[8]


def test_package_exports_every_name_it_lists() -> None:
    import veriot.ledger as ledger

    missing = [name for name in ledger.__all__ if not hasattr(ledger, name)]
    assert missing == []
    assert sorted(ledger.__all__) == sorted(
        name for name in vars(ledger) if not name.startswith("_") and name not in _MODULES
    )


_MODULES = {
    "audit", "batch", "bundle", "checkpoint", "compact", "digests", "hashing", "proof", "segment",
    "testonly",
}  # fmt: skip
