"""Helpers shared by the CLI modules: errors with exit codes, data directory options."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

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
