"""`veriot demo`: the service and a simulated fleet together, on embedded defaults."""

from __future__ import annotations

import argparse
import json
import socket
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from tqdm import tqdm

from veriot.cli.common import CliError, add_data_option, settings_from
from veriot.core.types import SignedReading
from veriot.core.wire import encode_reading


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "demo", help="run the service with a simulated fleet"
    )
    add_data_option(p)
    p.add_argument(
        "--duration", type=float, default=15.0, help="seconds of simulated traffic (default 15)"
    )
    p.add_argument("--devices", type=int, default=12)
    p.add_argument("--rate", type=float, default=400.0, help="readings per second (default 400)")
    p.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    p.set_defaults(func=run)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _bad_readings(fleet_key: Any, seq: int, replay: SignedReading) -> list[dict[str, object]]:
    """A forged reading (signature of another message) and a replay, to show refusals."""
    from veriot.device import DeviceKey, sign_reading
    from veriot.simulate.profiles import DeviceState, records_for

    forger = DeviceKey.generate()
    honest = sign_reading(fleet_key, seq, records_for(DeviceState.create("meter", 1), time.time()))
    forged_sig = sign_reading(forger, seq, honest.reading.records).signature
    forged = SignedReading(reading=honest.reading, signature=forged_sig)
    return [encode_reading(forged), encode_reading(replay)]


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from veriot.api.app import create_app
    from veriot.api.http import serve_config
    from veriot.bootstrap import open_node
    from veriot.ledger.bundle import bundle_from_json, verify_bundle
    from veriot.simulate.runner import register_fleet, run_fleet

    port = args.port or _free_port()
    settings = settings_from(args, port=port)
    node = open_node(settings)
    api_key = node.create_api_key("demo")
    server = uvicorn.Server(serve_config(create_app(node), "127.0.0.1", port))
    thread = threading.Thread(target=server.run, name="veriot-demo-server", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise CliError("the service did not start", code=1)
        time.sleep(0.05)
    print(f"veriot demo: service on {url}  (API docs {url}/docs, metrics {url}/metrics)")
    print(f"             data in {settings.data_dir}/, operator API key {api_key}")
    headers = {"Authorization": f"Bearer {api_key}"}
    try:
        with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
            fleet = register_fleet(client, args.devices, prefix="demo")
            print(f"registered {len(fleet)} devices (cold-chain trucks, smart meters, machines)")
            total = int(args.rate * args.duration)
            with tqdm(total=total, unit="rd", desc="streaming") as bar:
                stats = run_fleet(client, fleet, args.rate, args.duration, progress=bar.update)
            # Show the refusals too: a forged signature and a replay.
            first = fleet[0]
            from veriot.device import sign_reading
            from veriot.simulate.profiles import records_for

            first.seq += 1
            good = sign_reading(first.key, first.seq, records_for(first.state, time.time()))
            client.post("/v1/readings", json={"readings": [encode_reading(good)]})
            bad = client.post(
                "/v1/readings", json={"readings": _bad_readings(first.key, first.seq + 1, good)}
            )
            refused = bad.json()
            stats.accepted += 1
            stats.add([r for r in refused.get("results", [])])
            # Cut a checkpoint of everything and anchor it now rather than at the next period.
            node.sequencer.checkpoint_now().result()
            anchor = node.anchorer.anchor_once() if node.anchorer else None
            reading_id = stats.accepted_ids[len(stats.accepted_ids) // 2]
            bundle_response = client.get(f"/v1/readings/{reading_id}/proof")
            bundle_response.raise_for_status()
            bundle_json = bundle_response.json()
            checkpoint = client.get("/v1/log/checkpoint").json()
            alerts = _count_alerts(client)
            bundle = bundle_from_json(bundle_json)
            verify_bundle(bundle)
            if node.chain is not None and bundle.anchor is not None:
                from veriot.chain.verify import verify_on_chain

                verify_on_chain(bundle, node.chain)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
    bundle_path = Path(settings.data_dir) / "bundle.json"
    bundle_path.write_text(json.dumps(bundle_json, indent=2))
    reasons = ", ".join(f"{k}: {v}" for k, v in sorted(stats.reasons.items())) or "none"
    print()
    print("veriot demo summary")
    print(f"  readings accepted   {stats.accepted}")
    print(f"  readings rejected   {stats.rejected}  ({reasons})")
    print(
        f"  log size            {checkpoint['size']} leaves (readings and alerts), "
        f"signed root {checkpoint['root'][:16]}..."
    )
    if alerts is not None:
        print(f"  anomaly alerts      {alerts} (GET /v1/alerts; each is a leaf of the log)")
    if anchor is not None or bundle.anchor is not None:
        a = anchor or bundle.anchor
        assert a is not None
        print(
            f"  anchored on chain   tree size {a.size} in block {a.block}, "
            f"tx {a.tx_hash[:18]}... (chain id {a.chain_id})"
        )
    where = "the log and the chain" if bundle.anchor is not None else "the log"
    print(f"  proof bundle        {bundle_path}: VERIFIED against {where}")
    print(f"  check it yourself   veriot verify-proof {bundle_path}")
    print(f"  audit the store     veriot verify --data {settings.data_dir}")
    return 0


def _count_alerts(client: httpx.Client) -> int | None:
    """How many alerts the detectors raised (None when this service has no alert API)."""
    count, cursor = 0, None
    while True:
        params: dict[str, str | int] = {"limit": 1000}
        if cursor:
            params["cursor"] = cursor
        response = client.get("/v1/alerts", params=params)
        if response.status_code != 200:
            return None
        page = response.json()
        count += len(page.get("items", []))
        cursor = page.get("next_cursor")
        if not cursor:
            return count
