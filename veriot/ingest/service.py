"""One ingest path for every front door (HTTP, MQTT): decode, verify, sequence, count."""

from __future__ import annotations

import contextlib
import gc
import os
import sys
from collections.abc import Sequence
from concurrent.futures import Future

from veriot.core.wire import decode_request
from veriot.ingest.metrics import IngestMetrics
from veriot.ingest.sequencer import Sequencer
from veriot.ingest.verdict import Verdict
from veriot.ingest.verify import CheckResult, Verifier
from veriot.ports import Clock


class IngestService:
    def __init__(
        self, verifier: Verifier, sequencer: Sequencer, metrics: IngestMetrics, clock: Clock
    ) -> None:
        self.verifier = verifier
        self.sequencer = sequencer
        self.metrics = metrics
        self.clock = clock

    def check(self, body: bytes) -> CheckResult:
        """Decodes and verifies a request body. Raises DecodeError for a malformed body.
        CPU-bound and thread-safe: call it from worker threads."""
        request = decode_request(body)
        return self.verifier.check(request.readings, request.batches, self.clock.now())

    def submit(self, result: CheckResult) -> Future[list[Verdict]]:
        return self.sequencer.submit(result.items, result.events)

    def ingest(self, body: bytes) -> list[Verdict]:
        """Synchronous decode -> verify -> sequence; returns once accepted readings are durable."""
        verdicts = self.submit(self.check(body)).result()
        self.count(verdicts)
        return verdicts

    def count(self, verdicts: Sequence[Verdict]) -> None:
        accepted = 0
        for v in verdicts:
            if v.accepted:
                accepted += 1
                if v.gap:
                    self.metrics.gaps.inc()
            elif v.reason is not None:
                self.metrics.rejected.labels(v.reason.value).inc()
        if accepted:
            self.metrics.accepted.inc(accepted)
        self.metrics.log_size.set(self.sequencer.size)


SWITCH_INTERVAL_S = 0.0005
"""The GIL switch interval of a service process. bench/ingest.py: +14% ingest at 1 ms
against the default 5 ms; at 0.5 ms against 1 ms (2026-12-07, five interleaved pairs of
per-batch drives on 2 cores), 127,400 to 140,300 readings/s against 118,700 to 124,600,
with the service at 5.5 to 6.6 us of CPU per reading against 6.3 to 6.7; 0.25 ms and 2 ms
did no better than 1 ms."""


HELPER_NICENESS = 10
"""How much lower than the service process its helper processes (check processes, alert
scoring) run: the service process holds the serial part of ingest (the event loop, the
sequencer, the commits), and each time one of its threads wakes (a commit's fsync
returned, a request arrived) it should get a core before the helpers' throughput work.
Helpers still take every cycle it leaves (bench/ingest.py: about +10% readings/s with
per-batch signatures on 2 cores, no change with per-reading signatures)."""


def lower_helper_priority() -> None:
    """Called in a helper process once it is set up: lowers its CPU priority by
    HELPER_NICENESS (best effort: a platform without nice keeps its priority)."""
    with contextlib.suppress(AttributeError, OSError):  # no os.nice (Windows), or refused
        os.nice(HELPER_NICENESS)


def tune_gc_for_service() -> None:
    """Sets the garbage collector and GIL switching for a long-running ingest process.

    Ingest allocates several short-lived, acyclic objects per reading, and the default
    gen-0 threshold (700 allocations) runs a collection every few readings, each walking
    the young objects of every request in flight. What start-up built lives for the whole
    run, so it is frozen out of collections, and gen 0 is collected every 50,000
    allocations instead (bench/ingest.py measures the difference).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    # The service runs several threads (event loop, sequencer, alert scoring, check-pool
    # readers) that each hold the GIL briefly per request; at the default 5 ms switch
    # interval a thread waking for a request can wait that long behind a busy one.
    sys.setswitchinterval(SWITCH_INTERVAL_S)
