"""POST /v1/readings (ingest), reading queries, and inclusion proof bundles."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from veriot.api.deps import NodeDep, OperatorDep, time_param
from veriot.api.problems import Problem, ProblemKind
from veriot.api.schemas import reading_json
from veriot.bootstrap import Node
from veriot.core.errors import DecodeError
from veriot.core.types import ReadingQuery
from veriot.ingest.check_pool import CheckPoolError
from veriot.ingest.verdict import Reason, Verdict, encode_verdicts
from veriot.ingest.verify import CheckResult
from veriot.ledger.bundle import bundle_to_json
from veriot.proofs import build_bundle

INGEST_PATH = "/v1/readings"
router = APIRouter(prefix=INGEST_PATH, tags=["readings"])

_REASON_PROBLEM = {
    Reason.MALFORMED: ProblemKind.MALFORMED_REQUEST,
    Reason.BAD_SIGNATURE: ProblemKind.BAD_SIGNATURE,
    Reason.BAD_BATCH: ProblemKind.BAD_BATCH,
    Reason.UNKNOWN_DEVICE: ProblemKind.UNKNOWN_DEVICE,
    Reason.REVOKED_DEVICE: ProblemKind.REVOKED_DEVICE,
    Reason.REPLAY: ProblemKind.REPLAY,
    Reason.EQUIVOCATION: ProblemKind.EQUIVOCATION,
    Reason.CLOCK_SKEW: ProblemKind.CLOCK_SKEW,
    Reason.UNAVAILABLE: ProblemKind.UNAVAILABLE,
}


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise Problem(
            ProblemKind.PAYLOAD_TOO_LARGE,
            f"body of {declared} bytes is over the {limit}-byte limit",
        )
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Problem(ProblemKind.PAYLOAD_TOO_LARGE, f"body is over the {limit}-byte limit")
        chunks.append(chunk)
    return b"".join(chunks)


async def _check(request: Request, node: Node, body: bytes) -> CheckResult:
    """Decodes and checks `body` on a check process when the node has them, else (or when
    none could answer) on the app's verification threads. Raises DecodeError."""
    if node.check_pool is not None:
        try:
            return await node.check_pool.check_async(body, node.clock.now())
        except CheckPoolError:
            pass  # logged by the pool; this body is checked here instead
    threads = request.app.state.verify_pool
    result: CheckResult = await asyncio.wrap_future(threads.submit(node.ingest.check, body))
    return result


def _refused(node_metrics: Any, reason: str) -> None:
    node_metrics.requests_rejected.labels(reason).inc()
    node_metrics.rejected.labels(reason).inc()


@router.post(
    "",
    summary="Submit signed readings",
    description=(
        'Body: `{"readings": [...], "batches": [...]}` as docs/wire-format.md specifies. '
        "Answers one result per reading (readings first, then batch members, in order): "
        "accepted with its id and log index, or rejected with a reason. Accepted readings "
        "are durable before the answer. When none is accepted the answer is problem+json."
    ),
)
async def post_readings(request: Request, node: NodeDep) -> Response:
    # Served by VeriotApp (veriot/api/app.py) ahead of FastAPI's middleware and routing;
    # this route documents the operation and answers if it is ever reached.
    return await ingest_readings(request, node)


async def ingest_readings(request: Request, node: Node) -> Response:
    """The answer to `POST /v1/readings`. Raises Problem for a request it refuses."""
    started = time.perf_counter()
    metrics = node.metrics
    content_type = request.headers.get("content-type", "application/json").split(";")[0].strip()
    if content_type != "application/json":
        _refused(metrics, "unsupported_media_type")
        raise Problem(
            ProblemKind.UNSUPPORTED_MEDIA_TYPE, f"got {content_type!r}, want application/json"
        )
    try:
        body = await _read_body(request, node.settings.max_body_bytes)
    except Problem:
        _refused(metrics, "payload_too_large")
        raise
    try:
        checked = await _check(request, node, body)
    except DecodeError as exc:
        _refused(metrics, Reason.MALFORMED.value)
        raise Problem(ProblemKind.MALFORMED_REQUEST, str(exc)) from exc
    verdicts: list[Verdict] = await asyncio.wrap_future(node.ingest.submit(checked))
    node.ingest.count(verdicts)
    metrics.latency.observe(time.perf_counter() - started)
    if not verdicts or any(v.accepted for v in verdicts):
        return Response(encode_verdicts(verdicts), media_type="application/json")
    summary = {
        "accepted": 0,
        "rejected": len(verdicts),
        "results": [v.to_json() for v in verdicts],
    }
    reasons = {v.reason for v in verdicts}
    kind = ProblemKind.READINGS_REJECTED
    if len(reasons) == 1:
        (only,) = reasons
        kind = _REASON_PROBLEM.get(only, kind) if only else kind
    detail = (
        verdicts[0].detail if len(verdicts) == 1 else f"all {len(verdicts)} readings were rejected"
    )
    raise Problem(kind, detail, **summary)


@router.get("", summary="List readings (operator)")
def list_readings(
    node: NodeDep,
    _key: OperatorDep,
    device: str | None = None,
    name: str | None = None,
    since: str | None = None,
    until: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: str | None = None,
) -> dict[str, Any]:
    query = ReadingQuery(
        device=device,
        name=name,
        since=time_param(since, "since"),
        until=time_param(until, "until"),
        limit=limit,
        cursor=cursor,
    )
    page = node.store.query_readings(query)
    return {"items": [reading_json(r) for r in page.items], "next_cursor": page.next_cursor}


@router.get("/{reading_id}", summary="One reading (operator)")
def get_reading(reading_id: str, node: NodeDep, _key: OperatorDep) -> dict[str, Any]:
    stored = node.store.get_reading(reading_id)
    if stored is None:
        raise Problem(ProblemKind.NOT_FOUND, f"no reading {reading_id}")
    return reading_json(stored)


@router.get("/{reading_id}/proof", summary="Self-contained proof bundle of a reading")
async def get_proof(reading_id: str, node: NodeDep) -> dict[str, Any]:
    bundle = await asyncio.to_thread(build_bundle, node, reading_id)
    if bundle is None:
        raise Problem(ProblemKind.NOT_FOUND, f"no reading {reading_id}")
    return bundle_to_json(bundle)
