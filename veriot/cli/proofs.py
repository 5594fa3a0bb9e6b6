"""`veriot proof`, `veriot verify-proof`, `veriot verify`: get, check and audit proofs."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from veriot.cli.common import CliError, add_server_options, open_local_node, settings_from
from veriot.config import Settings
from veriot.core.errors import VeriotError
from veriot.ledger.bundle import ProofBundle, bundle_from_json, bundle_to_json, verify_bundle
from veriot.ports import Anchor


def register(sub: Any) -> None:
    proof: argparse.ArgumentParser = sub.add_parser(
        "proof", help="print the self-contained proof bundle of a reading"
    )
    proof.add_argument("reading_id")
    add_server_options(proof)
    proof.add_argument("--url", default=None, help="ask a running service instead of --data")
    proof.set_defaults(func=print_proof)

    check = sub.add_parser("verify-proof", help="check a proof bundle without the data directory")
    check.add_argument("bundle", type=Path)
    check.add_argument(
        "--chain", default=None, help="also check against the chain at this JSON-RPC URL"
    )
    check.set_defaults(func=verify_proof)

    audit = sub.add_parser("verify", help="audit the whole store against the log")
    add_server_options(audit)
    audit.set_defaults(func=audit_store)


def print_proof(args: argparse.Namespace) -> int:
    if args.url:
        import httpx

        response = httpx.get(
            f"{args.url.rstrip('/')}/v1/readings/{args.reading_id}/proof", timeout=30
        )
        if response.status_code != 200:
            raise CliError(f"server said {response.status_code}: {response.text}", code=1)
        print(json.dumps(response.json(), indent=2))
        return 0
    from veriot.proofs import build_bundle

    node = open_local_node(args)
    node.start()
    try:
        bundle = build_bundle(node, args.reading_id)
    finally:
        node.stop()
    if bundle is None:
        raise CliError(f"no reading {args.reading_id} in {args.data}", code=1)
    print(json.dumps(bundle_to_json(bundle), indent=2))
    return 0


def load_bundle(path: Path) -> ProofBundle:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        obj = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise CliError(f"{path} is not JSON: {exc}", code=1) from exc
    return bundle_from_json(obj)


def verify_proof(args: argparse.Namespace) -> int:
    try:
        bundle = load_bundle(args.bundle)
        verify_bundle(bundle)
        if args.chain:
            from veriot.chain.verify import verify_bundle_on_chain

            verify_bundle_on_chain(bundle, args.chain)
    except VeriotError as exc:
        print(f"INVALID: {exc}", file=sys.stderr)
        return 1
    reading = bundle.signed.reading
    print(
        f"VALID: reading seq {reading.seq} of {reading.device} is leaf {bundle.inclusion.index} "
        f"of the log's signed tree of size {bundle.checkpoint.size} "
        f"(log {bundle.checkpoint.log_id[:16]}...)"
        + (" and anchored on chain" if args.chain else "")
    )
    return 0


def audit_store(args: argparse.Namespace) -> int:
    from veriot.bootstrap import load_or_create_log_seed
    from veriot.ledger.checkpoint import log_id_for, log_public_key
    from veriot.proofs import audit
    from veriot.storage import open_store

    settings = settings_from(args)
    if not settings.log_key_path.exists():
        raise CliError(f"no veriot log in {settings.data_dir} (no {settings.log_key_path.name})")
    public_key = log_public_key(load_or_create_log_seed(settings.log_key_path))
    anchors = _anchors_on_chain(settings, log_id_for(public_key))
    store = open_store(settings.db, settings.data_dir)
    try:
        report = audit(store, public_key, anchors)
    finally:
        store.close()
    for finding in report.findings:
        print(f"{finding.kind.value}: {finding.detail}")
    if not report.ok:
        print(f"veriot verify: {len(report.findings)} problem(s) found", file=sys.stderr)
        return 1
    print(
        f"OK: {report.leaves_checked} leaves, {report.checkpoints_checked} signed checkpoints "
        f"and {report.anchors_checked} anchored roots verified"
    )
    return 0


def _anchors_on_chain(settings: Settings, log_id: str) -> list[Anchor]:
    """The log's anchors as the chain records them (not as veriot's files say)."""
    if not settings.use_chain:
        return []
    from veriot.chain.bootstrap import embedded_dir, open_chain
    from veriot.chain.verify import anchors_on_chain

    if settings.chain is None and not embedded_dir(settings.data_dir).exists():
        return []
    chain = open_chain(settings, deploy_if_missing=False)
    try:
        return anchors_on_chain(chain, log_id)
    finally:
        chain.close()
