"""`veriot_process_cpu_seconds_total`: the CPU each process of a node used, by role."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from veriot.ingest.metrics import IngestMetrics, process_cpu_seconds

pytestmark = pytest.mark.skipif(
    not os.path.exists(f"/proc/{os.getpid()}/stat"), reason="reads /proc (Linux)"
)

BURN = (
    "import sys, time\n"
    "start = time.process_time()\n"
    "while time.process_time() - start < float(sys.argv[1]):\n"
    "    pass\n"
    "print('done', flush=True)\n"
    "sys.stdin.read()\n"
)


def burner(seconds: float) -> subprocess.Popen[str]:
    """A process that burns `seconds` of CPU, says so, and waits for its stdin to close."""
    child = subprocess.Popen(
        [sys.executable, "-c", BURN, str(seconds)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None and child.stdout.readline() == "done\n"
    return child


def stop(child: subprocess.Popen[str]) -> None:
    """Closes its stdin, so it exits, and reaps it."""
    assert child.stdin is not None and child.stdout is not None
    child.stdin.close()
    child.wait(10)
    child.stdout.close()


def samples(metrics: IngestMetrics) -> dict[tuple[str, str], float]:
    """(role, process) -> CPU seconds, as the registry exposes them."""
    text = generate_latest(metrics.registry).decode()
    return {
        (sample.labels["role"], sample.labels["process"]): sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "veriot_process_cpu_seconds"
        for sample in family.samples
        if sample.name.endswith("_total")
    }


def test_each_helper_is_reported_with_the_cpu_it_used_numbered_within_its_role() -> None:
    busy, idle = burner(0.4), burner(0.0)
    try:
        helpers = [("check", busy.pid), ("check", idle.pid), ("alerts", idle.pid)]
        metrics = IngestMetrics(lambda: helpers)
        got = samples(metrics)
        assert set(got) == {
            ("service", "service"),
            ("check", "check-0"),
            ("check", "check-1"),
            ("alerts", "alerts-0"),
        }
        assert got[("check", "check-0")] >= 0.3  # clock ticks: 10 ms apart
        assert got[("check", "check-1")] < got[("check", "check-0")] - 0.2
        assert got[("check", "check-1")] == got[("alerts", "alerts-0")]
    finally:
        stop(busy)
        stop(idle)


def test_the_service_itself_counts_the_cpu_of_all_its_threads() -> None:
    start = time.process_time()
    while time.process_time() - start < 0.2:
        pass
    before = os.times()
    got = samples(IngestMetrics())
    assert set(got) == {("service", "service")}
    assert got[("service", "service")] >= before.user + before.system - 0.02


def test_a_helper_that_has_exited_is_left_out() -> None:
    child = burner(0.0)
    stop(child)  # reaped: its /proc entry is gone
    assert process_cpu_seconds(child.pid) is None
    metrics = IngestMetrics(lambda: [("check", child.pid)])
    assert set(samples(metrics)) == {("service", "service")}
