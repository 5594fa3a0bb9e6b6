"""`veriot chain ...`: serve the embedded chain over JSON-RPC, show what is on chain, and
deploy veriot's contracts on a JSON-RPC node."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from veriot.cli import common


def register(sub: Any) -> None:
    parser = sub.add_parser("chain", help="the chain that witnesses the log")
    chain_sub = parser.add_subparsers(dest="chain_command", metavar="CHAIN_COMMAND")

    serve = chain_sub.add_parser(
        "serve", help="serve the embedded chain as a read-only Ethereum JSON-RPC endpoint"
    )
    common.add_data_option(serve)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8545)
    serve.set_defaults(func=_serve)

    info = chain_sub.add_parser("info", help="chain id, contract addresses and latest anchor")
    common.add_data_option(info)
    info.add_argument("--chain", help="Ethereum JSON-RPC URL (default: the embedded chain)")
    info.add_argument("--log-id", help="log whose latest anchor to show (default: none)")
    info.set_defaults(func=_info)

    deploy = chain_sub.add_parser("deploy", help="deploy the contracts on a JSON-RPC node")
    common.add_data_option(deploy)
    deploy.add_argument("--chain", required=True, help="Ethereum JSON-RPC URL")
    deploy.add_argument(
        "--chain-key", type=Path, required=True, help="file holding the operator's hex private key"
    )
    deploy.set_defaults(func=_deploy)

    parser.set_defaults(func=lambda args: _help(parser))


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def _serve(args: argparse.Namespace) -> int:
    from veriot.chain.bootstrap import embedded_dir
    from veriot.chain.embedded import EmbeddedChain
    from veriot.chain.rpc_server import ChainRpcServer

    directory = embedded_dir(args.data)
    if not (directory / "journal.jsonl").exists():
        raise common.CliError(f"no embedded chain in {directory} (run `veriot serve` first)")
    chain = EmbeddedChain(directory)
    try:
        server = ChainRpcServer(chain, args.host, args.port)
    except OSError as exc:
        raise common.CliError(f"cannot listen on {args.host}:{args.port}: {exc}", 1) from exc
    print(
        json.dumps(
            {
                "url": server.url,
                "chain_id": chain.chain_id(),
                "registry": chain.registry_address,
                "log_anchor": chain.anchor_address,
            }
        ),
        flush=True,
    )
    try:
        server.serve_forever()
    finally:
        server.close()
    return 0


def _info(args: argparse.Namespace) -> int:
    from veriot.chain.bootstrap import open_chain
    from veriot.config import Settings

    chain = open_chain(Settings(data_dir=args.data, chain=args.chain), deploy_if_missing=False)
    out: dict[str, Any] = {
        "chain": args.chain or "embedded",
        "chain_id": chain.chain_id(),
        "block": chain.block_number(),
        "registry": chain.registry_address,
        "log_anchor": chain.anchor_address,
    }
    if args.log_id:
        anchor = chain.latest_anchor(args.log_id)
        out["latest_anchor"] = (
            None
            if anchor is None
            else {
                "size": anchor.size,
                "root": anchor.root.hex(),
                "tx_hash": anchor.tx_hash,
                "block": anchor.block,
                "timestamp": anchor.timestamp,
            }
        )
    print(json.dumps(out, indent=2))
    chain.close()
    return 0


def _deploy(args: argparse.Namespace) -> int:
    from veriot.chain.bootstrap import deploy_contracts

    deployment = deploy_contracts(args.chain, args.chain_key, args.data)
    print(
        json.dumps(
            {
                "chain_id": deployment.chain_id,
                "registry": deployment.registry,
                "log_anchor": deployment.log_anchor,
                "block": deployment.block,
            },
            indent=2,
        )
    )
    return 0
