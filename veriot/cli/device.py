"""`veriot device ...`: create, list, revoke devices; sign a reading from the shell."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import httpx

from veriot.cli.common import CliError, add_server_options, open_local_node
from veriot.core.errors import InputError
from veriot.core.wire import encode_reading


def _add_remote_options(p: argparse.ArgumentParser) -> None:
    add_server_options(p)
    p.add_argument("--url", default=None, help="talk to a running service instead of --data")
    p.add_argument(
        "--api-key",
        dest="api_key",
        default=None,
        help="operator API key for --url ($VERIOT_API_KEY)",
    )


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("device", help="manage devices and sign readings")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)

    create = actions.add_parser("create", help="make a device key file and register the device")
    create.add_argument("name")
    create.add_argument(
        "--type", default="generic", help="device type (e.g. cold-chain, meter, machine)"
    )
    create.add_argument(
        "--key", type=Path, default=None, help="key file to write (default: NAME.key)"
    )
    _add_remote_options(create)
    create.set_defaults(func=create_device)

    lst = actions.add_parser("list", help="list registered devices")
    _add_remote_options(lst)
    lst.set_defaults(func=list_devices)

    revoke = actions.add_parser(
        "revoke", help="revoke a device: its readings are refused from now on"
    )
    revoke.add_argument("did")
    _add_remote_options(revoke)
    revoke.set_defaults(func=revoke_device)

    sign = actions.add_parser("sign", help="print one signed reading as JSON")
    sign.add_argument("--key", type=Path, required=True, help="device key file")
    sign.add_argument("--seq", type=int, required=True, help="sequence number")
    sign.add_argument("--time", type=float, default=None, help="record time (default: now)")
    sign.add_argument("records", nargs="+", metavar="name=value[:unit]")
    sign.set_defaults(func=sign_reading)


def _api(args: argparse.Namespace) -> httpx.Client:
    import os

    key = args.api_key or os.environ.get("VERIOT_API_KEY")
    if not key:
        raise CliError("--url needs an operator API key: --api-key KEY or $VERIOT_API_KEY")
    return httpx.Client(base_url=args.url, headers={"Authorization": f"Bearer {key}"}, timeout=30)


def _check(response: httpx.Response) -> Any:
    if response.status_code >= 400:
        try:
            detail = response.json().get("detail", response.text)
        except ValueError:
            detail = response.text
        raise CliError(f"server said {response.status_code}: {detail}", code=1)
    return response.json()


def _print_device(d: dict[str, Any]) -> None:
    print(f"{d['did']}  {d['status']:<8} {d['type']:<12} {d['name']}")


def create_device(args: argparse.Namespace) -> int:
    from veriot.device import DeviceKey

    path: Path = args.key or Path(f"{args.name}.key")
    if path.exists():
        raise CliError(f"{path} already exists; refusing to overwrite a key file")
    key = DeviceKey.generate(name=args.name, type=args.type)
    if args.url:
        with _api(args) as client:
            body = {"name": args.name, "type": args.type, "public_key": key.public_key.hex()}
            device = _check(client.post("/v1/devices", json=body))
        key.save(path)
        _print_device(device)
    else:
        node = open_local_node(args)
        try:
            registered = node.register_device(key.public_key, args.name, args.type)
        finally:
            node.store.close()
        key.save(path)
        print(f"{registered.did}  active   {registered.type:<12} {registered.name}")
    print(f"key written to {path} (mode 0600)")
    return 0


def list_devices(args: argparse.Namespace) -> int:
    if args.url:
        with _api(args) as client:
            for d in _check(client.get("/v1/devices"))["items"]:
                _print_device(d)
        return 0
    node = open_local_node(args)
    try:
        for device in node.store.list_devices():
            print(f"{device.did}  {device.status.value:<8} {device.type:<12} {device.name}")
    finally:
        node.store.close()
    return 0


def revoke_device(args: argparse.Namespace) -> int:
    if args.url:
        with _api(args) as client:
            _print_device(_check(client.post(f"/v1/devices/{args.did}/revoke")))
        return 0
    node = open_local_node(args)
    try:
        device = node.revoke_device(args.did)
    finally:
        node.store.close()
    print(f"{device.did}  revoked  {device.type:<12} {device.name}")
    return 0


def sign_reading(args: argparse.Namespace) -> int:
    from veriot.device import DeviceKey, parse_record_args, sign_reading

    key = DeviceKey.load(args.key)
    when = args.time if args.time is not None else time.time()
    try:
        records = parse_record_args(args.records, when)
        signed = sign_reading(key, args.seq, records)
    except InputError as exc:
        raise CliError(str(exc)) from exc
    print(json.dumps(encode_reading(signed)))
    return 0
