"""The verifiable log: signed checkpoints and consistency proofs."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Query

from veriot.api.deps import NodeDep
from veriot.api.problems import Problem, ProblemKind
from veriot.api.schemas import checkpoint_json
from veriot.ledger.proof import consistency_proof

router = APIRouter(prefix="/v1/log", tags=["log"])


@router.get("/checkpoint", summary="The latest signed checkpoint")
async def get_checkpoint(node: NodeDep) -> dict[str, Any]:
    checkpoint = node.store.latest_checkpoint()
    if checkpoint is None and node.sequencer.size > 0:
        checkpoint = await asyncio.wrap_future(node.sequencer.checkpoint_now())
    if checkpoint is None:
        raise Problem(ProblemKind.NOT_YET_PROVABLE, "the log is empty: no checkpoint yet")
    return checkpoint_json(checkpoint, node.log_public_key)


@router.get("/consistency", summary="Consistency proof between two tree sizes")
def get_consistency(
    node: NodeDep,
    first: Annotated[int, Query(ge=1)],
    second: Annotated[int, Query(ge=1)],
) -> dict[str, Any]:
    checkpoint = node.store.latest_checkpoint()
    latest = checkpoint.size if checkpoint else 0
    if first > second:
        raise Problem(
            ProblemKind.INVALID_PARAMETER, f"first={first} is larger than second={second}"
        )
    if second > latest:
        raise Problem(
            ProblemKind.NOT_YET_PROVABLE,
            f"second={second} is beyond the latest checkpoint (size {latest})",
        )
    proof = consistency_proof(first, second, node.store.get_nodes)
    return {"first": proof.first, "second": proof.second, "hashes": [h.hex() for h in proof.hashes]}
