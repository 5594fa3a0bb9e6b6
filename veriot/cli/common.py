"""Helpers shared by the CLI modules: errors with exit codes, data directory options."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from veriot.bootstrap import Node, open_node
from veriot.config import Settings

DEFAULT_DATA_DIR = Path(os.environ.get("VERIOT_DATA", "veriot-data"))


class CliError(Exception):
    """A user-facing CLI failure: printed as `veriot: error: ...`, exits with `code`."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


def add_data_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data",
        type=Path,
        default=DEFAULT_DATA_DIR,
        help="data directory (default: $VERIOT_DATA or ./veriot-data)",
    )


def add_server_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by commands that build a node: data dir, store URL, chain."""
    add_data_option(parser)
    parser.add_argument(
        "--db",
        default=None,
        help="store URL: sqlite:///PATH (default: DATA/veriot.db) or postgresql://...",
    )
    parser.add_argument(
        "--chain", default=None, help="Ethereum JSON-RPC URL (default: the embedded chain in DATA)"
    )
    parser.add_argument(
        "--chain-key",
        dest="chain_key",
        type=Path,
        default=None,
        help="operator key file for --chain",
    )
    parser.add_argument(
        "--no-chain", dest="no_chain", action="store_true", help="run the log without a chain"
    )


def settings_from(args: argparse.Namespace, **overrides: object) -> Settings:
    values: dict[str, object] = {"data_dir": args.data}
    if getattr(args, "db", None):
        values["db"] = args.db
    for name in (
        "host",
        "port",
        "chain",
        "chain_key",
        "mqtt",
        "checkpoint_interval_s",
        "max_body_bytes",
        "max_clock_skew_s",
        "anchor_interval_s",
        "verify_processes",
    ):
        value = getattr(args, name, None)
        if value is not None:
            values[name] = value
    if getattr(args, "no_chain", False):
        values["use_chain"] = False
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def open_local_node(args: argparse.Namespace) -> Node:
    """A node on the data directory, for offline commands (no server needed)."""
    return open_node(settings_from(args))
