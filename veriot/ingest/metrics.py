"""Prometheus metrics of one veriot node (a registry per node, so tests can run many)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics_core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

HelperProcesses = Callable[[], Sequence[tuple[str, int]]]
"""The helper processes a node runs now, as (role, process id): "check" for each check
process, "alerts" for the alert scoring process."""

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def process_cpu_seconds(pid: int) -> float | None:
    """CPU seconds (user and system) that process `pid` has used, from /proc; None where
    there is no /proc (not Linux) or no such process any more."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None
    # After the command name: state is field 3, utime and stime fields 14 and 15 (proc(5)).
    try:
        return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS
    except (IndexError, ValueError):
        return None


class ProcessCpu(Collector):
    """`veriot_process_cpu_seconds_total{role, process}`: the CPU seconds used by the
    service process (role "service") and by each helper process that `helpers` lists,
    numbered within its role ("check-0", "check-1", "alerts-0"). Where ingest's CPU goes,
    process by process: the service's own one GIL bounds it, the helpers run beside it."""

    def __init__(self, helpers: HelperProcesses) -> None:
        self.helpers = helpers

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            "veriot_process_cpu_seconds",
            "CPU seconds used by the service process and each of its helper processes",
            labels=["role", "process"],
        )
        times = os.times()
        family.add_metric(["service", "service"], times.user + times.system)
        numbers: dict[str, int] = {}
        for role, pid in self.helpers():
            seconds = process_cpu_seconds(pid)
            if seconds is None:
                continue
            n = numbers[role] = numbers.get(role, -1) + 1
            family.add_metric([role, f"{role}-{n}"], seconds)
        yield family


class IngestMetrics:
    def __init__(self, helpers: HelperProcesses = lambda: ()) -> None:
        self.registry = CollectorRegistry()
        self.processes = ProcessCpu(helpers)
        """Set `self.processes.helpers` to list the node's helper processes."""
        self.registry.register(self.processes)
        self.accepted = Counter(
            "veriot_readings_accepted", "Readings accepted into the log", registry=self.registry
        )
        self.rejected = Counter(
            "veriot_readings_rejected",
            "Readings rejected, by reason",
            ["reason"],
            registry=self.registry,
        )
        self.requests_rejected = Counter(
            "veriot_requests_rejected",
            "Whole requests refused before any reading was looked at, by reason",
            ["reason"],
            registry=self.registry,
        )
        self.gaps = Counter(
            "veriot_sequence_gaps",
            "Accepted readings whose sequence number skipped ahead",
            registry=self.registry,
        )
        self.events_dropped = Counter(
            "veriot_security_events_dropped",
            "Security events not stored: over their device's budget for the minute, by kind",
            ["kind"],
            registry=self.registry,
        )
        self.log_size = Gauge("veriot_log_size", "Leaves in the log", registry=self.registry)
        self.alert_backlog = Gauge(
            "veriot_alert_backlog_readings",
            "Readings committed to the log and not yet scored by the anomaly detectors",
            registry=self.registry,
        )
        self.commit_leaves = Histogram(
            "veriot_commit_leaves",
            "Leaves (readings and alerts) per durable commit of the log: how many requests"
            " share each group commit",
            buckets=(1, 10, 100, 300, 1000, 3000, 10000),
            registry=self.registry,
        )
        self.latency = Histogram(
            "veriot_ingest_latency_seconds",
            "Time from request received to durable verdict",
            buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5),
            registry=self.registry,
        )
