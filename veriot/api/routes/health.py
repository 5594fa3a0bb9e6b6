"""Liveness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from veriot.api.deps import NodeDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz(node: NodeDep) -> dict[str, object]:
    checkpoint = node.store.latest_checkpoint()
    return {
        "status": "ok",
        "log_size": node.sequencer.size,
        "checkpoint_size": checkpoint.size if checkpoint else 0,
    }


@router.get("/metrics")
def metrics(node: NodeDep) -> Response:
    node.metrics.log_size.set(node.sequencer.size)
    if node.alerts is not None:
        node.metrics.alert_backlog.set(node.alerts.backlog)
    return Response(generate_latest(node.metrics.registry), media_type=CONTENT_TYPE_LATEST)
