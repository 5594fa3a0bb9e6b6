"""`veriot worker` and `veriot sequencer`: MQTT ingest scaled out over several processes.

Workers verify in parallel (run one per core or per host); the sequencer is the one
writer of the log. They share a PostgreSQL store and a broker. See docs/deployment.md.
"""

from __future__ import annotations

import argparse
import signal
import threading
from pathlib import Path
from typing import Any

from veriot.cli.common import CliError, add_data_option, settings_from
from veriot.ingest.mqtt_link import DEFAULT_SESSION_EXPIRY_S
from veriot.ingest.service import tune_gc_for_service

CONNECT_WAIT_S = 30.0
REFRESH_DEVICES_S = 10.0
"""How often a worker reloads the device registry (revocations made elsewhere)."""


def register(sub: Any) -> None:
    worker = sub.add_parser("worker", help="verify MQTT readings and forward them to the sequencer")
    _common(worker)
    worker.add_argument(
        "--group", default="veriot", help="shared subscription group (default veriot)"
    )
    worker.add_argument(
        "--threads", type=int, default=0, help="verification threads (0: one per core)"
    )
    worker.set_defaults(func=run_worker)
    seq = sub.add_parser("sequencer", help="the one writer of the log, fed by the workers")
    _common(seq)
    add_data_option(seq)
    seq.set_defaults(func=run_sequencer)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--mqtt", required=True, help="broker URL, e.g. mqtt://127.0.0.1:1883")
    p.add_argument("--db", required=True, help="the shared store: postgresql://...")
    p.add_argument(
        "--client-id",
        dest="client_id",
        default=None,
        help="MQTT client id; keep it stable across restarts (default: role, host and store)",
    )
    p.add_argument(
        "--internal-topic",
        dest="internal_topic",
        default=None,
        help="topic from workers to the sequencer (default veriot/internal/v1/checked)",
    )
    p.add_argument(
        "--session-expiry",
        dest="session_expiry",
        type=int,
        default=DEFAULT_SESSION_EXPIRY_S,
        help="seconds the broker keeps the session of a stopped process "
        f"(default {DEFAULT_SESSION_EXPIRY_S})",
    )


def _wait_for_signal() -> None:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()


def _topic(args: argparse.Namespace) -> dict[str, Any]:
    return {"internal_topic": args.internal_topic} if args.internal_topic else {}


def run_worker(args: argparse.Namespace) -> int:
    from veriot.clock import SystemClock
    from veriot.ingest.devices import DeviceCache
    from veriot.ingest.mqtt import default_client_id
    from veriot.ingest.mqtt_cluster import MqttWorker
    from veriot.ingest.verify import Verifier
    from veriot.storage import open_store

    if not args.db.startswith(("postgresql://", "postgres://")):
        raise CliError(
            f"a worker shares its store with the sequencer: want --db postgresql://..., got {args.db.split('://')[0]}://"
        )
    settings = settings_from(argparse.Namespace(data=Path("."), db=args.db, mqtt=args.mqtt))
    store = open_store(args.db, Path("."))
    cache = DeviceCache(store)
    worker = MqttWorker(
        Verifier(cache.get, settings.max_clock_skew_s),
        SystemClock(),
        args.mqtt,
        client_id=args.client_id or default_client_id("worker", args.db),
        group=args.group,
        threads=args.threads,
        session_expiry_s=args.session_expiry,
        **_topic(args),
    )
    stop = threading.Event()

    def refresh() -> None:
        while not stop.wait(REFRESH_DEVICES_S):
            try:
                cache.refresh()
            except Exception as exc:  # the store is down: keep the cache, try again later
                print(f"veriot worker: cannot refresh devices: {exc}", flush=True)

    threading.Thread(target=refresh, daemon=True).start()
    try:
        worker.start(wait_s=CONNECT_WAIT_S)
        print(
            f"veriot worker: verifying readings from {worker.link.url} as {worker.link.client_id}",
            flush=True,
        )
        tune_gc_for_service()
        _wait_for_signal()
    finally:
        stop.set()
        worker.stop()
        store.close()
    return 0


def run_sequencer(args: argparse.Namespace) -> int:
    from veriot.bootstrap import open_node
    from veriot.ingest.mqtt import default_client_id
    from veriot.ingest.mqtt_cluster import MqttSequencer

    if not args.db.startswith(("postgresql://", "postgres://")):
        raise CliError(
            f"the sequencer shares its store with the workers: want --db postgresql://..., got {args.db.split('://')[0]}://"
        )
    # The node must not consume device topics itself: the workers do (mqtt=None).
    node = open_node(settings_from(args, mqtt=None))
    node.start()
    sequencer = MqttSequencer(
        node.ingest,
        args.mqtt,
        client_id=args.client_id or default_client_id("sequencer", args.db),
        session_expiry_s=args.session_expiry,
        **_topic(args),
    )
    try:
        sequencer.start(wait_s=CONNECT_WAIT_S)
    except BaseException:
        sequencer.stop()
        node.stop()
        raise
    print(
        f"veriot sequencer: writing the log (size {node.sequencer.size}) from {sequencer.link.url}",
        flush=True,
    )
    try:
        tune_gc_for_service()
        _wait_for_signal()
    finally:
        sequencer.stop()
        node.stop()
    return 0
