"""`veriot ai recheck`: re-check an alert against proven data, trusting nothing the service
says that is not proved.

The alert is taken from its own log leaf, proved into a checkpoint signed by the log key;
every reading of its input window comes with its own proof bundle; the detector named by
the alert (at the version its hash names) re-scores those records here. The only thing
taken on the service's word is which readings are in the window, and a missing or extra
one changes the score, so the check fails rather than passes.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

import httpx

from veriot.ai import Alert, parse_alert_leaf, rescore
from veriot.cli.common import CliError
from veriot.core.errors import DecodeError, InputError, VeriotError
from veriot.core.types import Record
from veriot.ledger.bundle import (
    bundle_from_json,
    checkpoint_from_json,
    inclusion_from_json,
    verify_bundle,
)
from veriot.ledger.checkpoint import verify_checkpoint
from veriot.ledger.hashing import leaf_hash
from veriot.ledger.proof import verify_inclusion


@dataclass(frozen=True)
class Recheck:
    alert: Alert
    readings: int
    score: float

    @property
    def reproduced(self) -> bool:
        return self.score == self.alert.score


def register(ai_sub: Any) -> None:
    p: argparse.ArgumentParser = ai_sub.add_parser(
        "recheck", help="re-score an alert from the proven readings of its input window"
    )
    p.add_argument("index", type=int, help="the alert's log index")
    p.add_argument("--url", required=True, help="veriot service URL")
    p.add_argument(
        "--api-key", dest="api_key", default=None, help="operator API key ($VERIOT_API_KEY)"
    )
    p.add_argument(
        "--log-key",
        dest="log_key",
        default=None,
        help="the log's Ed25519 public key (hex) to pin; default: the one the service states",
    )
    p.set_defaults(func=run)


def _get(client: httpx.Client, path: str, **params: str | int) -> Any:
    try:
        response = client.get(path, params=params)
    except httpx.HTTPError as exc:
        raise CliError(f"cannot reach {client.base_url}: {exc}", code=1) from exc
    if response.status_code != 200:
        try:
            detail = response.json().get("detail", response.text)
        except ValueError:
            detail = response.text
        raise CliError(f"{path}: the service said {response.status_code}: {detail}", code=1)
    return response.json()


def proven_alert(client: httpx.Client, index: int, log_key: bytes | None) -> tuple[Alert, bytes]:
    """The alert at `index` from its proved leaf, and the log key its checkpoint verifies
    under. Raises VeriotError subclasses when any proof fails."""
    body = _get(client, f"/v1/alerts/{index}/proof")
    try:
        leaf = bytes.fromhex(body["leaf"])
        stated = dict(body["checkpoint"])
        stated_key = bytes.fromhex(stated.pop("log_public_key"))
    except (KeyError, TypeError, ValueError) as exc:
        raise DecodeError(f"the alert proof is malformed: {exc}") from exc
    key = log_key or stated_key
    checkpoint = checkpoint_from_json(stated)
    proof = inclusion_from_json(body["inclusion"])
    verify_checkpoint(checkpoint, key)
    if proof.index != index or proof.size != checkpoint.size:
        raise InputError(
            f"the proof is for leaf {proof.index} of {proof.size}; "
            f"want leaf {index} of the checkpoint's {checkpoint.size}"
        )
    verify_inclusion(leaf_hash(leaf), proof, checkpoint.root)
    return parse_alert_leaf(leaf), key


def proven_window(client: httpx.Client, alert: Alert, log_key: bytes) -> tuple[list[Record], int]:
    """The alert's sensor records from every reading of its window, each reading checked
    by its own proof bundle under `log_key`."""
    records: list[Record] = []
    readings = 0
    cursor: str | None = None
    while True:
        params: dict[str, str | int] = {"device": alert.device, "name": alert.name, "limit": 1000}
        if cursor:
            params["cursor"] = cursor
        page = _get(client, "/v1/readings", **params)
        for item in page["items"]:
            index = int(item["index"])
            if index > alert.last_index:
                return records, readings
            if index < alert.first_index:
                continue
            try:
                proof = _get(client, f"/v1/readings/{item['id']}/proof")
            except CliError as exc:
                raise InputError(f"reading at log index {index} cannot be proved: {exc}") from exc
            bundle = bundle_from_json(proof)
            verify_bundle(bundle)
            if bundle.log_public_key != log_key or bundle.inclusion.index != index:
                raise InputError(f"the bundle of log index {index} is not from this log")
            readings += 1
            records.extend(r for r in bundle.signed.reading.records if r.name == alert.name)
        cursor = page.get("next_cursor")
        if not cursor:
            return records, readings


def recheck(client: httpx.Client, index: int, log_key: bytes | None = None) -> Recheck:
    alert, key = proven_alert(client, index, log_key)
    records, readings = proven_window(client, alert, key)
    return Recheck(alert, readings, rescore(alert, records))


def run(args: argparse.Namespace) -> int:
    import os

    api_key = args.api_key or os.environ.get("VERIOT_API_KEY")
    if not api_key:
        raise CliError("listing the window's readings needs an operator key: --api-key KEY")
    try:
        log_key = bytes.fromhex(args.log_key) if args.log_key else None
    except ValueError as exc:
        raise CliError(f"--log-key is not hex: {exc}") from exc
    headers = {"Authorization": f"Bearer {api_key}"}
    with httpx.Client(base_url=args.url, headers=headers, timeout=30) as client:
        try:
            result = recheck(client, args.index, log_key)
        except VeriotError as exc:
            print(f"NOT VERIFIED: {exc}")
            return 1
    a = result.alert
    where = f"{a.device} {a.name} at {a.time:.3f}, log indices {a.first_index}..{a.last_index}"
    if not result.reproduced:
        print(
            f"NOT REPRODUCED: alert {args.index} ({where}) claims score {a.score!r}; "
            f"{a.detector} gives {result.score!r} from {result.readings} proven readings"
        )
        return 1
    print(
        f"REPRODUCED: alert {args.index} ({where}): {a.detector} ({a.detector_hash[:12]}...) "
        f"scores {result.score:.4f} from {result.readings} proven readings"
    )
    return 0
