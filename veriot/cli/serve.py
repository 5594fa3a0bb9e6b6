"""`veriot serve`: run the HTTP service on a data directory."""

from __future__ import annotations

import argparse
import os
from typing import Any

from veriot.cli.common import add_server_options, settings_from
from veriot.config import DEFAULT_PORT
from veriot.ingest.service import tune_gc_for_service


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("serve", help="run the veriot HTTP service")
    add_server_options(p)
    p.add_argument("--host", default=None, help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help=f"port (default {DEFAULT_PORT})")
    p.add_argument(
        "--anchor-interval",
        dest="anchor_interval_s",
        type=float,
        default=None,
        help="seconds between anchors of the latest checkpoint on chain (default 5)",
    )
    p.add_argument(
        "--mqtt", default=None, help="also ingest from an MQTT broker, e.g. mqtt://127.0.0.1:1883"
    )
    p.add_argument(
        "--checkpoint-interval",
        dest="checkpoint_interval_s",
        type=float,
        default=None,
        help="seconds between signed checkpoints (default 1)",
    )
    p.add_argument(
        "--max-body-bytes", dest="max_body_bytes", type=int, default=None, help="request body limit"
    )
    p.add_argument(
        "--max-clock-skew",
        dest="max_clock_skew_s",
        type=float,
        default=None,
        help="seconds a record's time may be ahead of this clock (default 300)",
    )
    p.add_argument(
        "--verify-processes",
        dest="verify_processes",
        type=int,
        default=None,
        help="worker processes that decode and check request bodies, signatures included "
        "(default: one per CPU core; 0: threads of the service process)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from veriot.api.app import create_app
    from veriot.api.http import serve_config
    from veriot.bootstrap import open_node

    if args.verify_processes is None:
        args.verify_processes = len(os.sched_getaffinity(0))
    settings = settings_from(args)
    node = open_node(settings)
    app = create_app(node)
    tune_gc_for_service()
    print(
        f"veriot: serving on http://{settings.host}:{settings.port} "
        f"(data in {settings.data_dir}, API docs at /docs)",
        flush=True,
    )
    uvicorn.Server(serve_config(app, settings.host, settings.port)).run()
    return 0
