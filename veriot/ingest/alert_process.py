"""The alert detectors in a process of their own, so scoring never holds ingest's GIL.

Every accepted record is fed to a streaming detector, which in Python costs more than
sequencing and storing the reading. In the service process that work would share one
GIL with the HTTP server and the sequencer; here it runs beside them. The alert pipeline
(veriot/ingest/alerts.py) stays in the service and still decides what is logged: it
sends each commit's segments as runs (first log index, readings) with the devices'
types, in log order, and gets back the alert leaves, the impossible-value events and
the drift share of each device it sent, exactly what scoring in its own process would
give.

If the process dies, the pipeline goes on with detectors in the service process (they
start empty, as after a restart without history), and says so in the log.
"""

from __future__ import annotations

import logging
import multiprocessing
from collections.abc import Mapping, Sequence
from multiprocessing.connection import Connection
from typing import Any

import msgspec

from veriot.ai.alerts import Run
from veriot.core.errors import VeriotError
from veriot.core.packed import PackedReadings
from veriot.core.types import Reading
from veriot.ingest.alerts import LocalScorer, Scored, score_readings

log = logging.getLogger(__name__)

START_TIMEOUT_S = 60.0


class _Request(msgspec.Struct, array_like=True, gc=False):
    """Runs of readings to score: (first log index, the run's readings in parts). The
    service sends a part as it holds it: packed readings go as the msgpack array they
    came in from a check process, without being decoded (see veriot.core.packed)."""

    runs: list[tuple[int, list[tuple[Reading, ...]]]]
    types: dict[str, str]
    now: float
    emit: bool


def _parts(readings: Sequence[Reading]) -> list[Any]:
    """A run's readings as _Request parts: msgspec encodes a packed part as it is."""
    if isinstance(readings, PackedReadings):
        return readings.parts
    return [readings]


class _Answer(msgspec.Struct, array_like=True, gc=False):
    scored: Scored
    shares: dict[str, float]


_encoder = msgspec.msgpack.Encoder()


def _serve(conn: Connection) -> None:
    """The process's loop: scores each request in order until the pipe closes."""
    from veriot.ai.alerts import AlertEngine
    from veriot.ingest.service import lower_helper_priority, tune_gc_for_service

    engine = AlertEngine()
    decoder = msgspec.msgpack.Decoder(_Request)
    tune_gc_for_service()
    lower_helper_priority()
    conn.send_bytes(b"ready")
    while True:
        try:
            request = decoder.decode(conn.recv_bytes())
        except EOFError:
            return
        runs = [(first, [r for part in parts for r in part]) for first, parts in request.runs]
        scored = score_readings(engine, runs, request.types, request.now, request.emit)
        shares = {device: engine.anomalous_share(device) for device in request.types}
        conn.send_bytes(_encoder.encode(_Answer(scored, shares)))


class ProcessScorer:
    """A Scorer (see veriot.ingest.alerts) whose detectors run in a spawned process.

    Called from one thread at a time (the alert pipeline's worker). Raises
    VeriotError at start when the process does not come up."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")  # the service has threads running
        self._conn, child = context.Pipe()
        self._process = context.Process(
            target=_serve, args=(child,), name="veriot-alert-scoring", daemon=True
        )
        self._process.start()
        child.close()
        if not self._conn.poll(START_TIMEOUT_S) or self._conn.recv_bytes() != b"ready":
            self.close()
            raise VeriotError("the alert scoring process did not start")
        self._decoder = msgspec.msgpack.Decoder(_Answer)
        self._shares: dict[str, float] = {}
        self._fallback: LocalScorer | None = None

    def score(
        self,
        runs: Sequence[Run],
        types: Mapping[str, str],
        now: float,
        emit: bool,
    ) -> Scored:
        if self._fallback is None:
            try:
                parts = [(first, _parts(readings)) for first, readings in runs]
                self._conn.send_bytes(_encoder.encode(_Request(parts, dict(types), now, emit)))
                answer = self._decoder.decode(self._conn.recv_bytes())
            except (EOFError, OSError, msgspec.MsgspecError) as exc:
                from veriot.ai.alerts import AlertEngine

                log.error("the alert scoring process failed (%s); scoring in the service", exc)
                self._fallback = LocalScorer(AlertEngine())
            else:
                self._shares.update(answer.shares)
                return answer.scored
        return self._fallback.score(runs, types, now, emit)

    def anomalous_share(self, device: str) -> float:
        if self._fallback is not None:
            return self._fallback.anomalous_share(device)
        return self._shares.get(device, 0.0)

    def process_id(self) -> int | None:
        if self._fallback is not None or not self._process.is_alive():
            return None
        pid: int | None = self._process.pid
        return pid

    def close(self) -> None:
        self._conn.close()
        self._process.join(10)
        if self._process.is_alive():
            self._process.kill()
