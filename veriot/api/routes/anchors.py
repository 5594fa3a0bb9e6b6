"""Anchors of the log's checkpoints on chain."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from veriot.api.deps import NodeDep
from veriot.api.problems import Problem, ProblemKind

router = APIRouter(prefix="/v1/anchors", tags=["anchors"])


@router.get("", summary="Checkpoints anchored on chain, oldest first")
def list_anchors(node: NodeDep) -> dict[str, Any]:
    from veriot.chain.anchorer import anchor_to_json

    if node.anchorer is None:
        raise Problem(ProblemKind.NOT_FOUND, "this veriot service runs without a chain")
    return {
        "items": [anchor_to_json(a) for a in node.anchorer.list_anchors()],
        "status": node.anchorer.status(),
    }
