"""Prometheus metrics of one veriot node (a registry per node, so tests can run many)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class IngestMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
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
        self.log_size = Gauge("veriot_log_size", "Leaves in the log", registry=self.registry)
        self.alert_backlog = Gauge(
            "veriot_alert_backlog_readings",
            "Readings committed to the log and not yet scored by the anomaly detectors",
            registry=self.registry,
        )
        self.latency = Histogram(
            "veriot_ingest_latency_seconds",
            "Time from request received to durable verdict",
            buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5),
            registry=self.registry,
        )
