"""`veriot apikey create`: make an operator API key (only its hash is stored)."""

from __future__ import annotations

import argparse
from typing import Any

from veriot.cli.common import add_server_options, open_local_node


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("apikey", help="manage operator API keys")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    create = actions.add_parser("create", help="create an API key and print it once")
    add_server_options(create)
    create.add_argument("--name", default="operator", help="a label for the key")
    create.set_defaults(func=create_key)


def create_key(args: argparse.Namespace) -> int:
    node = open_local_node(args)
    try:
        print(node.create_api_key(args.name))
    finally:
        node.store.close()
    return 0
