"""`veriot edge`: sign readings for local devices and deliver them over MQTT, buffering
durably while the broker or network is down.

    veriot edge --mqtt mqtt://broker:1883 --buffer /var/lib/veriot-edge --key fridge-7.json < lines
    veriot edge --mqtt mqtt://broker:1883 --buffer DIR --keys DIR --simulate --rate 50 --duration 60
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from veriot.cli.common import CliError
from veriot.core.errors import InputError


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "edge", help="sign, buffer and deliver device readings over MQTT"
    )
    p.add_argument("--mqtt", required=True, help="broker URL, e.g. mqtt://127.0.0.1:1883")
    p.add_argument("--buffer", required=True, type=Path, help="directory of the durable buffer")
    p.add_argument(
        "--key", action="append", type=Path, default=[], help="device key file (repeatable)"
    )
    p.add_argument(
        "--keys", type=Path, default=None, help="a directory of device key files (*.json)"
    )
    p.add_argument(
        "--client-id",
        dest="client_id",
        default=None,
        help="MQTT client id (default: from the buffer path)",
    )
    p.add_argument(
        "--simulate", action="store_true", help="generate readings instead of reading stdin"
    )
    p.add_argument(
        "--rate", type=float, default=10.0, help="--simulate: readings/s in all (default 10)"
    )
    p.add_argument("--duration", type=float, default=10.0, help="--simulate: seconds (default 10)")
    p.add_argument(
        "--drain-timeout",
        dest="drain_timeout",
        type=float,
        default=60.0,
        help="seconds to wait at the end for veriot to answer what is buffered (default 60)",
    )
    p.set_defaults(func=run)


def _load_keys(args: argparse.Namespace) -> list[Any]:
    from veriot.device import DeviceKey

    paths = list(args.key)
    if args.keys is not None:
        if not args.keys.is_dir():
            raise CliError(f"--keys {args.keys} is not a directory")
        paths += sorted(args.keys.glob("*.json"))
    if not paths:
        raise CliError("the agent needs device keys: --key FILE (repeatable) or --keys DIR")
    return [DeviceKey.load(p) for p in paths]


def run(args: argparse.Namespace) -> int:
    from veriot.edge import EdgeAgent, EdgeBuffer, parse_line, simulated
    from veriot.ingest.mqtt import default_client_id

    keys = _load_keys(args)
    buffer = EdgeBuffer(args.buffer)
    agent = EdgeAgent(
        buffer,
        keys,
        args.mqtt,
        client_id=args.client_id or default_client_id("edge", str(args.buffer.resolve())),
    )
    agent.start()
    backlog = buffer.count()
    print(
        f"veriot edge: {len(keys)} device(s), {backlog} reading(s) buffered, "
        f"broker {agent.link.url}",
        file=sys.stderr,
        flush=True,
    )
    bad = 0
    try:
        if args.simulate:
            for device, records in simulated(agent.devices(), args.rate, args.duration):
                agent.submit(device, records)
        else:
            for number, line in enumerate(sys.stdin, 1):
                if not line.strip():
                    continue
                try:
                    agent.submit(*parse_line(line, time.time()))
                except InputError as exc:
                    bad += 1
                    print(f"veriot edge: line {number}: {exc}", file=sys.stderr, flush=True)
        drained = agent.wait_drained(args.drain_timeout)
    finally:
        agent.stop()
        left = buffer.count()
        buffer.close()
    s = agent.stats
    print(f"sent {s.sent}, stored {s.stored}, rejected {s.rejected}, still buffered {left}")
    if not drained:
        print(
            f"veriot edge: {left} reading(s) not yet answered stay in {args.buffer} "
            "for the next run",
            file=sys.stderr,
        )
    return 0 if drained and bad == 0 and s.rejected == 0 else 1
