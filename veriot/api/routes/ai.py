"""The AI layer over HTTP: alerts (list, stream, proof, re-check), forecasts, machine
health and device trust grades."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query
from fastapi.responses import StreamingResponse

from veriot.ai import (
    Alert,
    TrustSignals,
    alert_to_json,
    evaluate_forecast,
    forecast,
    is_plausible,
    machine_health,
    parse_alert_leaf,
    rescore,
    trust_grade,
)
from veriot.api.deps import NodeDep, OperatorDep, time_param
from veriot.api.problems import Problem, ProblemKind
from veriot.api.schemas import checkpoint_json
from veriot.bootstrap import Node
from veriot.core.errors import InputError
from veriot.core.types import Device, ReadingQuery, Record, StoredReading
from veriot.ingest.alerts import AlertPipeline
from veriot.ports import AlertQuery
from veriot.proofs import prove_index

router = APIRouter(tags=["ai"])

MAX_HORIZON = 288
"""The longest forecast served, in steps (a day of 5-minute readings)."""
FORECAST_HISTORY = 4032
"""Readings a forecast learns from at most (two weeks of 5-minute readings)."""
HEALTH_HISTORY = 2000
"""Readings machine health learns from at most."""
MACHINE_TYPE = "machine"
STREAM_KEEPALIVE_S = 15.0
STREAM_MAX_S = 300.0
"""A stream ends after this long; EventSource clients reconnect with Last-Event-ID, and a
server that shuts down waits for open streams no longer than this."""
STREAM_MAX_BACKLOG = 1000
"""Undelivered batches after which a slow stream is closed (its client resumes)."""


def alert_json(index: int, alert: Alert, leaf: bytes) -> dict[str, Any]:
    return {"index": index, **alert_to_json(alert), "leaf": leaf.hex()}


def _alert_at(node: Node, index: int) -> tuple[Alert, bytes]:
    leaf = node.store.get_alert(index)
    if leaf is None:
        raise Problem(ProblemKind.NOT_FOUND, f"no alert at log index {index}")
    try:
        return parse_alert_leaf(leaf), leaf
    except InputError as exc:
        raise Problem(ProblemKind.NOT_FOUND, f"log index {index} is not an alert: {exc}") from exc


def _pipeline(node: Node) -> AlertPipeline:
    if node.alerts is None:
        raise Problem(ProblemKind.UNAVAILABLE, "this node does not run the alert pipeline")
    return node.alerts


def _device(node: Node, did: str) -> Device:
    device = node.store.get_device(did)
    if device is None:
        raise Problem(ProblemKind.NOT_FOUND, f"device {did} is not registered")
    return device


# -- alerts ----------------------------------------------------------------------------


@router.get("/v1/alerts", summary="List alerts (operator)")
def list_alerts(
    node: NodeDep,
    _key: OperatorDep,
    device: str | None = None,
    name: str | None = None,
    since: str | None = None,
    until: str | None = None,
    min_score: Annotated[float | None, Query(ge=0.0, le=1.0)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: str | None = None,
) -> dict[str, Any]:
    query = AlertQuery(
        device=device,
        name=name,
        since=time_param(since, "since"),
        until=time_param(until, "until"),
        min_score=min_score,
        limit=limit,
        cursor=cursor,
    )
    page = node.store.query_alerts(query)
    items = [alert_json(i, parse_alert_leaf(leaf), leaf) for i, leaf in page.items]
    return {"items": items, "next_cursor": page.next_cursor}


def _sse(index: int, alert: Alert) -> str:
    body = json.dumps({"index": index, **alert_to_json(alert)}, separators=(",", ":"))
    return f"id: {index}\nevent: alert\ndata: {body}\n\n"


@router.get(
    "/v1/alerts/stream",
    summary="Live alerts as Server-Sent Events (operator)",
    description=(
        "Each committed alert is an event `alert` whose id is its log index and whose data "
        "is the alert as JSON. With a `Last-Event-ID` header the stream first replays the "
        "stored alerts after that index. Filters: device, name, min_score. A stream ends "
        f"after {STREAM_MAX_S:g} s; clients reconnect with Last-Event-ID."
    ),
    response_class=StreamingResponse,
)
async def stream_alerts(
    node: NodeDep,
    _key: OperatorDep,
    device: str | None = None,
    name: str | None = None,
    min_score: Annotated[float | None, Query(ge=0.0, le=1.0)] = None,
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    pipeline = _pipeline(node)
    after: int | None = None
    if last_event_id is not None:
        if not last_event_id.strip().isdigit():
            raise Problem(
                ProblemKind.INVALID_PARAMETER, f"Last-Event-ID {last_event_id!r} is not a log index"
            )
        after = int(last_event_id)

    def wanted(alert: Alert) -> bool:
        return (
            (device is None or alert.device == device)
            and (name is None or alert.name == name)
            and (min_score is None or alert.score >= min_score)
        )

    loop = asyncio.get_running_loop()
    inbox: asyncio.Queue[Sequence[tuple[int, Alert]] | None] = asyncio.Queue()

    def offer(batch: Sequence[tuple[int, Alert]]) -> None:  # on the event loop
        inbox.put_nowait(None if inbox.qsize() >= STREAM_MAX_BACKLOG else batch)

    def deliver(batch: Sequence[tuple[int, Alert]]) -> None:  # on the pipeline's thread
        if not loop.is_closed():
            loop.call_soon_threadsafe(offer, list(batch))

    # Subscribed before the backlog is read, so no alert falls between the two.
    unsubscribe = pipeline.subscribe(deliver)

    def backlog(start: int) -> list[tuple[int, Alert]]:
        query = AlertQuery(device=device, name=name, min_score=min_score, limit=1000, cursor=None)
        out: list[tuple[int, Alert]] = []
        while True:
            page = node.store.query_alerts(query)
            out.extend((i, parse_alert_leaf(leaf)) for i, leaf in page.items if i > start)
            if page.next_cursor is None:
                return out
            query = AlertQuery(
                device=device, name=name, min_score=min_score, limit=1000, cursor=page.next_cursor
            )

    async def events() -> AsyncIterator[str]:
        try:
            yield f"retry: 3000\n: veriot alerts from log size {node.sequencer.size}\n\n"
            last = -1
            if after is not None:
                for index, alert in await asyncio.to_thread(backlog, after):
                    yield _sse(index, alert)
                    last = index
            deadline = loop.time() + STREAM_MAX_S
            while (left := deadline - loop.time()) > 0:
                try:
                    batch = await asyncio.wait_for(inbox.get(), min(STREAM_KEEPALIVE_S, left))
                except TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                if batch is None:
                    return  # too far behind: the client resumes from its Last-Event-ID
                for index, alert in batch:
                    if index > last and wanted(alert):
                        yield _sse(index, alert)
                        last = index
        finally:
            unsubscribe()

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.get("/v1/alerts/{index}", summary="One alert (operator)")
def get_alert(index: int, node: NodeDep, _key: OperatorDep) -> dict[str, Any]:
    alert, leaf = _alert_at(node, index)
    return alert_json(index, alert, leaf)


@router.get(
    "/v1/alerts/{index}/proof",
    summary="Inclusion proof of an alert leaf to the latest signed checkpoint",
    description=(
        "The alert, its leaf data (hex), the RFC 9162 inclusion proof of the leaf and the "
        "signed checkpoint it proves to. The readings of the alert's input window (log "
        "indices first_index..last_index) are proved by /v1/readings/{id}/proof."
    ),
)
async def get_alert_proof(index: int, node: NodeDep) -> dict[str, Any]:
    alert, leaf = await asyncio.to_thread(_alert_at, node, index)
    proof, checkpoint = await asyncio.to_thread(prove_index, node, index)
    return {
        "alert": alert_json(index, alert, leaf),
        "leaf": leaf.hex(),
        "inclusion": {
            "index": proof.index,
            "size": proof.size,
            "hashes": [h.hex() for h in proof.hashes],
        },
        "checkpoint": checkpoint_json(checkpoint, node.log_public_key),
    }


def window_records(node: Node, alert: Alert) -> tuple[list[Record], int]:
    """The alert's sensor records in its input window, in log order, and how many
    readings they came from."""
    records: list[Record] = []
    readings = 0
    query = ReadingQuery(device=alert.device, name=alert.name, limit=1000)
    while True:
        page = node.store.query_readings(query)
        for stored in page.items:
            if stored.index > alert.last_index:
                return records, readings
            if stored.index >= alert.first_index:
                readings += 1
                records.extend(r for r in stored.signed.reading.records if r.name == alert.name)
        if page.next_cursor is None:
            return records, readings
        query = ReadingQuery(
            device=alert.device, name=alert.name, limit=1000, cursor=page.next_cursor
        )


@router.get(
    "/v1/alerts/{index}/recheck",
    summary="Re-score an alert from the logged readings of its window (operator)",
    description=(
        "Runs the alert's detector, at the version its hash names, over the sensor's "
        "records in the readings with log index first_index..last_index and compares the "
        "last score with the alert's."
    ),
)
def recheck_alert(index: int, node: NodeDep, _key: OperatorDep) -> dict[str, Any]:
    alert, _leaf = _alert_at(node, index)
    records, readings = window_records(node, alert)
    score = rescore(alert, records)
    return {
        "index": index,
        "detector": alert.detector,
        "detector_hash": alert.detector_hash,
        "first_index": alert.first_index,
        "last_index": alert.last_index,
        "readings": readings,
        "score": alert.score,
        "rescored": score,
        "reproduced": score == alert.score,
    }


# -- forecasts ---------------------------------------------------------------------------


def _series(readings: Sequence[StoredReading], name: str) -> tuple[list[float], list[float], str]:
    times: list[float] = []
    values: list[float] = []
    unit = ""
    for stored in readings:
        for r in stored.signed.reading.records:
            if r.name == name and is_plausible(r.unit, r.value):
                times.append(r.time)
                values.append(r.value)
                unit = r.unit
    return times, values, unit


@router.get(
    "/v1/forecasts/{did}/{name}",
    summary="Short-term forecast of one sensor with a 90% prediction interval (operator)",
    description=(
        "Forecasts `horizon` steps (the series' median time step) after its last point, "
        f"from its last {FORECAST_HISTORY} readings. `evaluation` backtests the same model "
        "on the last `horizon` points: MASE of ours and of seasonal-naive (one day earlier)."
    ),
)
def get_forecast(
    did: str,
    name: str,
    node: NodeDep,
    _key: OperatorDep,
    horizon: Annotated[int, Query(ge=1, le=MAX_HORIZON)] = 12,
) -> dict[str, Any]:
    _device(node, did)
    readings = node.store.recent_readings(did, FORECAST_HISTORY, name=name)
    if not readings:
        raise Problem(ProblemKind.NOT_FOUND, f"device {did} has no readings of sensor {name!r}")
    times, values, unit = _series(readings, name)
    result = forecast(times, values, horizon)
    evaluation = None
    try:
        ev = evaluate_forecast(times, values, horizon)
        evaluation = {"mase": ev.mase, "naive_mase": ev.naive_mase, "ratio": ev.ratio}
    except InputError:
        pass  # less than a day of history before the held-out points
    return {
        "device": did,
        "name": name,
        "unit": unit,
        "history": len(values),
        "step_s": result.step,
        "horizon": horizon,
        "interval": 0.9,
        "points": [
            {"time": p.time, "mean": p.mean, "lower": p.lower, "upper": p.upper}
            for p in result.points
        ],
        "evaluation": evaluation,
    }


# -- machine health and trust grades -------------------------------------------------------


@router.get(
    "/v1/devices/{did}/health",
    summary="Health index (0..100) and remaining useful life of a machine (operator)",
    description=(
        f"For devices of type `{MACHINE_TYPE}`: Hotelling's T-squared of its readings (one "
        "row per reading, one column per sensor) against their first rows as the reference "
        f"of normal operation; from its last {HEALTH_HISTORY} readings."
    ),
)
def get_health(did: str, node: NodeDep, _key: OperatorDep) -> dict[str, Any]:
    device = _device(node, did)
    if device.type != MACHINE_TYPE:
        raise Problem(
            ProblemKind.INVALID_PARAMETER,
            f"device {did} is of type {device.type!r}; health is computed for type "
            f"{MACHINE_TYPE!r} only",
        )
    readings = node.store.recent_readings(did, HEALTH_HISTORY)
    if not readings:
        raise Problem(ProblemKind.INSUFFICIENT_DATA, f"device {did} has no readings yet")
    names = sorted({r.name for r in readings[-1].signed.reading.records})
    times: list[float] = []
    rows: list[list[float]] = []
    for stored in readings:
        values = {r.name: r.value for r in stored.signed.reading.records}
        if all(n in values for n in names):
            times.append(stored.signed.reading.records[0].time)
            rows.append([values[n] for n in names])
    health = machine_health(times, rows, names)
    return {
        "device": did,
        "sensors": names,
        "rows": len(rows),
        "index": health.index,
        "rul_estimate_s": health.rul_estimate_s,
        "contributing": health.contributing,
        "score": health.score,
    }


@router.get(
    "/v1/devices/{did}/grade",
    summary="Trust grade (A to F) of a device from its security signals (operator)",
    description=(
        "Signals: security events (bad signatures, wrong keys, replays, equivocations, "
        "sequence gaps, clock skew, physically impossible values) per 1000 readings, and "
        "drift: the share of its sensors whose detector is above its threshold now."
    ),
)
def get_grade(did: str, node: NodeDep, _key: OperatorDep) -> dict[str, Any]:
    _device(node, did)
    readings = node.store.count_readings(did)
    events = node.store.count_events(did)
    drift = node.alerts.anomalous_share(did) if node.alerts is not None else 0.0
    grade = trust_grade(TrustSignals(readings=readings, events=events, drift=drift))
    return {
        "device": did,
        "grade": grade.letter,
        "score": grade.score,
        "reasons": grade.reasons,
        "signals": {
            "readings": readings,
            "events": {kind.value: n for kind, n in sorted(events.items())},
            "drift": drift,
        },
    }
