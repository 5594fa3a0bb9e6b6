"""Entry point of the `veriot` command: builds the parser from the subcommand modules."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from veriot import __version__
from veriot.cli import common
from veriot.core.errors import VeriotError

# Each module exposes register(subparsers) and sets `func` on the parsers it adds.
_MODULES = (
    "device",
    "serve",
    "proofs",
    "apikey",
    "simulate",
    "demo",
    "ai",
    "chain",
    "edge",
    "cluster",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="veriot", description=__doc__)
    parser.add_argument("--version", action="version", version=f"veriot {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    import importlib

    for name in _MODULES:
        try:
            module = importlib.import_module(f"veriot.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"veriot.cli.{name}":
                continue  # subcommand group not built yet
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        code = func(args)
    except common.CliError as exc:
        print(f"veriot: error: {exc}", file=sys.stderr)
        return exc.code
    except VeriotError as exc:
        print(f"veriot: error: {exc}", file=sys.stderr)
        return 1
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        print(f"veriot: error: invalid settings: {problems}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
