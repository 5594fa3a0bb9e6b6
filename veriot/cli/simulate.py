"""`veriot simulate`: register a fleet and stream signed readings to a service."""

from __future__ import annotations

import argparse
import os
from typing import Any

import httpx
from tqdm import tqdm

from veriot.cli.common import CliError
from veriot.simulate.runner import register_fleet, run_fleet


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "simulate", help="stream a simulated fleet to a service"
    )
    p.add_argument("--url", required=True, help="veriot service URL, e.g. http://127.0.0.1:8080")
    p.add_argument("--devices", type=int, default=10, help="devices to register (default 10)")
    p.add_argument(
        "--rate", type=float, default=100.0, help="readings per second, fleet-wide (default 100)"
    )
    p.add_argument("--duration", type=float, default=10.0, help="seconds to run (default 10)")
    p.add_argument(
        "--api-key", dest="api_key", default=None, help="operator API key ($VERIOT_API_KEY)"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.devices < 1 or args.rate <= 0 or args.duration <= 0:
        raise CliError("--devices, --rate and --duration must be positive")
    key = args.api_key or os.environ.get("VERIOT_API_KEY")
    if not key:
        raise CliError(
            "registering devices needs an operator API key: --api-key KEY or $VERIOT_API_KEY"
        )
    headers = {"Authorization": f"Bearer {key}"}
    try:
        with httpx.Client(base_url=args.url, headers=headers, timeout=30) as client:
            fleet = register_fleet(client, args.devices)
            with tqdm(total=int(args.rate * args.duration), unit="rd", desc="readings") as bar:
                if args.mqtt:
                    from veriot.simulate.mqtt import run_fleet_mqtt

                    stats = run_fleet_mqtt(
                        args.mqtt, fleet, args.rate, args.duration, progress=bar.update
                    )
                else:
                    stats = run_fleet(client, fleet, args.rate, args.duration, progress=bar.update)
    except httpx.HTTPError as exc:
        raise CliError(f"cannot reach {args.url}: {exc}", code=1) from exc
    except RuntimeError as exc:
        raise CliError(str(exc), code=1) from exc
    print(
        f"sent {stats.sent}, accepted {stats.accepted}, rejected {stats.rejected}, "
        f"errors {stats.errors}"
    )
    return 0 if stats.errors == 0 else 1
