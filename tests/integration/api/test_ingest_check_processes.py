"""Ingest through the real HTTP service with check processes, as `veriot serve` runs it:
bodies are checked on the processes, and once they died, in the service; nothing is lost
or stored twice. /metrics reports the CPU of each process running."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import start_service
from tests.integration.api.test_ingest import PROBLEM, log_size, post, reading, register
from veriot.bootstrap import Node
from veriot.device import DeviceKey


def process_cpu(live: Any) -> dict[str, float]:
    """`veriot_process_cpu_seconds_total` of the service's /metrics, by process label."""
    with live.client() as c:
        text = c.get("/metrics").text
    out = {}
    for family in text_string_to_metric_families(text):
        if family.name == "veriot_process_cpu_seconds":
            for sample in family.samples:
                if sample.name.endswith("_total"):
                    out[sample.labels["process"]] = sample.value
    return out


def test_ingest_on_check_processes_then_in_the_service_once_they_died(tmp_path: Path) -> None:
    live, server, thread = start_service(tmp_path / "data", verify_processes=1)
    try:
        node = live.node
        assert isinstance(node, Node) and node.check_pool is not None
        key = DeviceKey.generate()
        register(live, key)

        first = post(live, reading(key, 1), reading(key, 2))
        assert first.status_code == 200, first.text
        assert [r["index"] for r in first.json()["results"]] == [0, 1]
        # /metrics says what each process has used (spawning one costs CPU).
        used = process_cpu(live)
        assert set(used) == {"service", "check-0", "alerts-0"}
        assert all(seconds > 0 for seconds in used.values())

        with live.client() as c:
            bad = c.post(
                "/v1/readings",
                content=b'{"readings": [{"device": 1}]}',
                headers={"content-type": "application/json"},
            )
        assert bad.status_code == 400
        assert bad.headers["content-type"].startswith(PROBLEM)
        assert "$.readings[0].device" in bad.json()["detail"]

        for worker in node.check_pool._workers:
            worker.process.kill()
            worker.process.join(10)
        third = reading(key, 3)
        later = post(live, third)
        assert later.status_code == 200, later.text
        results: list[dict[str, Any]] = later.json()["results"]
        assert results[0]["status"] == "accepted" and results[0]["index"] == 2

        again = post(live, third)
        assert again.status_code == 409
        assert again.json()["results"][0]["reason"] == "replay"
        assert log_size(live) == 3
        assert set(process_cpu(live)) == {"service", "alerts-0"}  # the dead one is gone
    finally:
        server.should_exit = True
        thread.join(timeout=30)
