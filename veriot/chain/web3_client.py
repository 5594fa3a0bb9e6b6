"""The ChainClient adapter for any Ethereum JSON-RPC node, through web3.py.

`Web3Chain.connect(url, key_file, deployment)` checks, before anything is sent, that the
node answers, is on the deployment's chain, holds code at both contract addresses, and
that the operator account can pay for gas; each failure is a typed ChainError.
The embedded chain (embedded.py) is the same class over an in-process provider.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

import requests
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils.abi import event_abi_to_log_topic
from eth_utils.crypto import keccak
from hexbytes import HexBytes
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.exceptions import (
    ContractLogicError,
    TimeExhausted,
    TransactionNotFound,
    Web3Exception,
    Web3RPCError,
)

from veriot.chain import artifacts
from veriot.chain.errors import (
    ChainUnavailableError,
    NoContractError,
    ReadOnlyChainError,
    TransactionRevertedError,
    UnfundedAccountError,
    WrongChainError,
)
from veriot.core.errors import ChainError, InputError
from veriot.ports import (
    DEVICE_REGISTERED,
    DEVICE_REVOKED,
    KEY_ROTATED,
    Anchor,
    ChainDevice,
    DeviceEvent,
    TxReceipt,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_TX_TIMEOUT_S = 120.0
DEFAULT_RPC_TIMEOUT_S = 10.0
GAS_MARGIN = 25_000
LOG_RANGE = 10_000
"""Blocks per eth_getLogs request (nodes cap the range they scan)."""

_EVENT_KINDS = {
    "DeviceRegistered": DEVICE_REGISTERED,
    "KeyRotated": KEY_ROTATED,
    "DeviceRevoked": DEVICE_REVOKED,
}


@dataclass(frozen=True, slots=True)
class Deployment:
    """Where veriot's contracts live: chain id, addresses and the block they were deployed in
    (event scans start there)."""

    chain_id: int
    registry: str
    log_anchor: str
    block: int = 0

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2) + "\n")
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> Deployment | None:
        """The deployment saved at `path`, None when there is none. Raises ChainError when
        the file is unreadable."""
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise ChainError(f"cannot read the chain deployment {path}: {exc}") from exc
        try:
            return cls(
                int(data["chain_id"]),
                str(data["registry"]),
                str(data["log_anchor"]),
                int(data.get("block", 0)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ChainError(f"chain deployment {path} is malformed: {exc}") from exc


def load_key(path: Path) -> LocalAccount:
    """The operator account from a file holding a hex private key (0x optional).
    Raises InputError when the file is missing or does not hold a key."""
    try:
        text = path.read_text().strip()
    except OSError as exc:
        raise InputError(f"cannot read the chain key file {path}: {exc}") from exc
    try:
        return cast(LocalAccount, Account.from_key(text))
    except (ValueError, TypeError) as exc:
        raise InputError(f"chain key file {path} does not hold a 32-byte hex private key") from exc


def log_id_bytes(log_id: str) -> bytes:
    """The bytes32 of a log id (the hex SHA-256 of the log's public key)."""
    try:
        raw = bytes.fromhex(log_id.removeprefix("0x"))
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise InputError(f"log id must be 64 hex digits; got {log_id!r}")
    return raw


def _check32(value: bytes, what: str) -> bytes:
    if len(value) != 32:
        raise InputError(f"{what} must be 32 bytes; got {len(value)}")
    return value


class Web3Chain:
    """ChainClient over a web3 provider. Thread-safe: calls are serialized."""

    _revert_errors: tuple[type[Exception], ...] = (ContractLogicError,)

    def __init__(
        self,
        w3: Web3,
        deployment: Deployment,
        account: LocalAccount | None = None,
        *,
        url: str = "embedded",
        tx_timeout_s: float = DEFAULT_TX_TIMEOUT_S,
    ) -> None:
        self._w3 = w3
        self._deployment = deployment
        self._account = account
        self._url = url
        self._tx_timeout_s = tx_timeout_s
        self._lock = threading.RLock()
        self._registry = self._contract(artifacts.REGISTRY, deployment.registry)
        self._anchor = self._contract(artifacts.LOG_ANCHOR, deployment.log_anchor)
        self._topics: dict[bytes, tuple[Contract, str]] = {}
        for contract in (self._registry, self._anchor):
            for entry in cast(list[dict[str, Any]], contract.abi):
                if entry.get("type") == "event":
                    topic = event_abi_to_log_topic(cast(Any, entry))
                    self._topics[topic] = (contract, str(entry["name"]))

    # --- construction ------------------------------------------------------------------

    @classmethod
    def connect(
        cls,
        url: str,
        deployment: Deployment,
        account: LocalAccount | None = None,
        *,
        rpc_timeout_s: float = DEFAULT_RPC_TIMEOUT_S,
        tx_timeout_s: float = DEFAULT_TX_TIMEOUT_S,
    ) -> Web3Chain:
        """A client of the node at `url` for `deployment`, after checking chain id,
        contract code and (with an account) its balance."""
        w3 = http_web3(url, rpc_timeout_s)
        chain = cls(w3, deployment, account, url=url, tx_timeout_s=tx_timeout_s)
        chain.check()
        return chain

    @classmethod
    def for_anchor_contract(
        cls, url: str, chain_id: int, log_anchor: str, *, rpc_timeout_s: float = 10.0
    ) -> Web3Chain:
        """A read-only client that finds the registry through the LogAnchor contract: what a
        third-party verifier knows from a proof bundle."""
        w3 = http_web3(url, rpc_timeout_s)
        probe = cls(w3, Deployment(chain_id, log_anchor, log_anchor), url=url)
        got = probe.chain_id()
        if got != chain_id:
            raise WrongChainError(got, chain_id)
        probe._require_code("LogAnchor", log_anchor)
        registry = probe._guard(
            "read the registry address", lambda: str(probe._anchor.functions.registry().call())
        )
        chain = cls(w3, Deployment(chain_id, registry, log_anchor), url=url)
        chain.check()
        return chain

    def check(self) -> None:
        """Raises WrongChainError, NoContractError or UnfundedAccountError."""
        got = self.chain_id()
        if got != self._deployment.chain_id:
            raise WrongChainError(got, self._deployment.chain_id)
        self._require_code("DeviceRegistry", self._deployment.registry)
        self._require_code("LogAnchor", self._deployment.log_anchor)
        if self._account is not None:
            address = self._account.address
            balance = self._guard("read the balance", lambda: self._w3.eth.get_balance(address))
            if balance == 0:
                raise UnfundedAccountError(address, balance)

    def _require_code(self, name: str, address: str) -> None:
        code = self._guard(
            f"read the code at {address}",
            lambda: self._w3.eth.get_code(Web3.to_checksum_address(address)),
        )
        if len(code) == 0:
            raise NoContractError(name, address, self._deployment.chain_id)

    def _contract(self, name: str, address: str) -> Contract:
        artifact = artifacts.load(name)
        return self._w3.eth.contract(address=Web3.to_checksum_address(address), abi=artifact.abi)

    # --- hooks for the embedded chain --------------------------------------------------

    @contextlib.contextmanager
    def _write_scope(self) -> Iterator[None]:
        """Held around building, signing and sending one transaction."""
        yield

    def _refresh(self) -> None:
        """Called before every operation (the embedded chain replays new journal entries)."""

    def _send_raw(self, raw: bytes) -> bytes:
        return bytes(self._w3.eth.send_raw_transaction(raw))

    # --- the port ----------------------------------------------------------------------

    @property
    def url(self) -> str:
        return self._url

    @property
    def deployment(self) -> Deployment:
        return self._deployment

    @property
    def registry_address(self) -> str:
        return str(self._registry.address)

    @property
    def anchor_address(self) -> str:
        return str(self._anchor.address)

    @property
    def operator(self) -> str | None:
        return None if self._account is None else str(self._account.address)

    @property
    def web3(self) -> Web3:
        return self._w3

    def chain_id(self) -> int:
        return self._guard("read the chain id", lambda: int(self._w3.eth.chain_id))

    def block_number(self) -> int:
        return self._guard("read the block number", lambda: int(self._w3.eth.block_number))

    def register_device(
        self, did: str, public_key: bytes, device_type: str, metadata_hash: bytes
    ) -> TxReceipt:
        _check32(public_key, "public key")
        _check32(metadata_hash, "metadata hash")
        return self._transact(
            f"register {did}",
            lambda: self._registry.functions.register(did, public_key, device_type, metadata_hash),
        )

    def rotate_key(self, did: str, public_key: bytes) -> TxReceipt:
        _check32(public_key, "public key")
        return self._transact(
            f"rotate the key of {did}", lambda: self._registry.functions.rotate_key(did, public_key)
        )

    def revoke_device(self, did: str) -> TxReceipt:
        return self._transact(f"revoke {did}", lambda: self._registry.functions.revoke(did))

    def get_device(self, did: str) -> ChainDevice | None:
        record = self._guard(
            f"read device {did}", lambda: self._registry.functions.device(did).call()
        )
        key, device_type, metadata_hash, registered_at, key_since, revoked_at = record
        if registered_at == 0:
            return None
        return ChainDevice(
            did,
            bytes(key),
            str(device_type),
            bytes(metadata_hash),
            float(registered_at),
            float(key_since),
            float(revoked_at) if revoked_at else None,
        )

    def device_at(self, did: str, when: float) -> ChainDevice | None:
        did_topic = keccak(text=did)
        events = self._events(
            self._registry.address, [None, did_topic], self._deployment.block, None
        )
        device: ChainDevice | None = None
        for event in events:
            if event.did != did:
                continue  # a keccak collision is not our device
            if event.kind == DEVICE_REGISTERED and device is None:
                device = ChainDevice(
                    did,
                    event.public_key,
                    event.device_type,
                    event.metadata_hash,
                    event.time,
                    event.time,
                )
            elif device is not None and event.kind == KEY_ROTATED and event.time <= when:
                device = ChainDevice(
                    did,
                    event.public_key,
                    device.device_type,
                    device.metadata_hash,
                    device.registered_at,
                    event.time,
                    device.revoked_at,
                )
            elif device is not None and event.kind == DEVICE_REVOKED:
                device = ChainDevice(
                    did,
                    device.public_key,
                    device.device_type,
                    device.metadata_hash,
                    device.registered_at,
                    device.key_since,
                    event.time,
                )
        return device

    def device_events(self, from_block: int, to_block: int | None = None) -> list[DeviceEvent]:
        return self._events(self._registry.address, [None], from_block, to_block)

    def anchor(self, log_id: str, size: int, root: bytes, timestamp: float) -> Anchor:
        log_bytes = log_id_bytes(log_id)
        _check32(root, "root")
        if size <= 0:
            raise InputError(f"anchored size must be positive; got {size}")
        time_ms = round(timestamp * 1000)
        receipt = self._transact(
            f"anchor log {log_id[:16]} at size {size}",
            lambda: self._anchor.functions.anchor(log_bytes, size, root, time_ms),
        )
        return Anchor(
            self._deployment.chain_id,
            self.anchor_address,
            receipt.tx_hash,
            receipt.block,
            size,
            root,
            time_ms / 1000,
            log_id,
        )

    def latest_anchor(self, log_id: str) -> Anchor | None:
        log_bytes = log_id_bytes(log_id)
        record = self._guard(
            "read the latest anchor", lambda: self._anchor.functions.latest(log_bytes).call()
        )
        return self._anchor_from_record(log_id, record)

    def anchor_at(self, log_id: str, size: int) -> Anchor | None:
        log_bytes = log_id_bytes(log_id)
        record = self._guard(
            f"read the anchor at size {size}",
            lambda: self._anchor.functions.anchor_at(log_bytes, size).call(),
        )
        return self._anchor_from_record(log_id, record)

    def list_anchors(self, log_id: str, from_block: int = 0) -> list[Anchor]:
        log_topic = log_id_bytes(log_id)
        topic0 = next(t for t, (_, n) in self._topics.items() if n == "Anchored")
        raw = self._logs(
            self._anchor.address, [topic0, log_topic], max(from_block, self._deployment.block), None
        )
        return [self._anchor_from_log(log_id, entry) for entry in raw]

    def close(self) -> None:
        """Nothing to release: HTTP sessions are pooled by web3 and closed at exit."""

    # --- internals ---------------------------------------------------------------------

    def _anchor_from_record(self, log_id: str, record: Any) -> Anchor | None:
        size, _root, _time_ms, block = record
        if size == 0:
            return None
        topic0 = next(t for t, (_, n) in self._topics.items() if n == "Anchored")
        for entry in self._logs(self._anchor.address, [topic0, log_id_bytes(log_id)], block, block):
            anchor = self._anchor_from_log(log_id, entry)
            if anchor.size == size:
                return anchor
        raise ChainError(
            f"the LogAnchor contract records size {size} at block {block}, "
            "but the node has no matching Anchored event (is the node pruning logs?)"
        )

    def _anchor_from_log(self, log_id: str, entry: Any) -> Anchor:
        args = self._anchor.events.Anchored().process_log(entry)["args"]
        return Anchor(
            self._deployment.chain_id,
            self.anchor_address,
            _hex(entry["transactionHash"]),
            int(entry["blockNumber"]),
            int(args["size"]),
            bytes(args["root"]),
            int(args["checkpoint_time_ms"]) / 1000,
            log_id,
        )

    def _events(
        self, address: str, topics: list[Any], from_block: int, to_block: int | None
    ) -> list[DeviceEvent]:
        out: list[DeviceEvent] = []
        for entry in self._logs(address, topics, from_block, to_block):
            found = self._topics.get(bytes(entry["topics"][0]))
            if found is None or found[1] not in _EVENT_KINDS:
                continue
            contract, name = found
            args = contract.events[name]().process_log(entry)["args"]
            kind = _EVENT_KINDS[name]
            key = bytes(args.get("public_key", args.get("new_key", b"")))
            out.append(
                DeviceEvent(
                    kind=kind,
                    did=str(args["did"]),
                    public_key=key,
                    device_type=str(args.get("device_type", "")),
                    metadata_hash=bytes(args.get("metadata_hash", b"")),
                    time=float(args["time"]),
                    block=int(entry["blockNumber"]),
                    tx_hash=_hex(entry["transactionHash"]),
                    log_index=int(entry["logIndex"]),
                )
            )
        return out

    def _logs(
        self, address: str, topics: list[Any], from_block: int, to_block: int | None
    ) -> list[Any]:
        last = self.block_number() if to_block is None else to_block
        encoded = [None if t is None else Web3.to_hex(t) for t in topics]
        while encoded and encoded[-1] is None:
            encoded.pop()
        out: list[Any] = []
        start = max(0, from_block)
        while start <= last:
            end = min(last, start + LOG_RANGE - 1)
            params: Any = {"address": address, "fromBlock": start, "toBlock": end}
            if encoded:
                params["topics"] = encoded
            out.extend(self._get_logs(params))
            start = end + 1
        out.sort(key=lambda e: (int(e["blockNumber"]), int(e["logIndex"])))
        return out

    def _get_logs(self, params: Any) -> list[Any]:
        return self._guard("read contract events", lambda: list(self._w3.eth.get_logs(params)))

    def _transact(self, action: str, build: Callable[[], ContractFunction]) -> TxReceipt:
        account = self._account
        if account is None:
            raise ReadOnlyChainError(action)
        with self._lock, self._write_scope():

            def send() -> bytes:
                tx = build().build_transaction(
                    {
                        "from": account.address,
                        "nonce": self._w3.eth.get_transaction_count(account.address, "pending"),
                        "chainId": self._deployment.chain_id,
                        "gasPrice": self._w3.eth.gas_price,
                    }
                )
                tx["gas"] = with_gas_margin(int(tx["gas"]))
                signed = account.sign_transaction(cast(Any, tx))
                return self._send_raw(bytes(signed.raw_transaction))

            tx_hash = self._guard(action, send)
            receipt = self._guard(
                action,
                lambda: self._w3.eth.wait_for_transaction_receipt(
                    HexBytes(tx_hash), timeout=self._tx_timeout_s, poll_latency=0.05
                ),
            )
            if receipt["status"] != 1:
                raise TransactionRevertedError(action, f"status 0 in tx {_hex(tx_hash)}")
            block = receipt["blockNumber"]
            stamp = self._guard(action, lambda: self._w3.eth.get_block(block)["timestamp"])
            return TxReceipt(_hex(tx_hash), int(block), int(stamp), int(receipt["gasUsed"]))

    def _guard(self, action: str, call: Callable[[], T]) -> T:
        """Runs `call` under the lock and turns library errors into typed ChainErrors."""
        with self._lock:
            try:
                self._refresh()
                return call()
            except ChainError:
                raise
            except self._revert_errors as exc:
                raise TransactionRevertedError(action, _reason(exc)) from exc
            except (
                requests.exceptions.ConnectionError,
                requests.exceptions.Timeout,
                ConnectionError,
                TimeoutError,
            ) as exc:
                raise ChainUnavailableError(self._url, f"{action}: {exc}") from exc
            except TimeExhausted as exc:
                raise ChainUnavailableError(self._url, f"{action}: no receipt: {exc}") from exc
            except TransactionNotFound as exc:
                raise ChainUnavailableError(self._url, f"{action}: {exc}") from exc
            except (Web3RPCError, Web3Exception, ValueError) as exc:
                text = str(exc)
                if "insufficient funds" in text.lower() or "balance" in text.lower():
                    address = self.operator or "?"
                    raise UnfundedAccountError(address, self._balance_or_zero(), text) from exc
                raise ChainError(f"{action} failed on {self._url}: {text}") from exc

    def _balance_or_zero(self) -> int:
        if self._account is None:
            return 0
        try:
            return int(self._w3.eth.get_balance(self._account.address))
        except Exception:  # the balance only decorates the message
            return 0


def deploy(
    w3: Web3,
    account: LocalAccount,
    send_raw: Callable[[bytes], bytes] | None = None,
    *,
    tx_timeout_s: float = DEFAULT_TX_TIMEOUT_S,
    url: str = "embedded",
) -> Deployment:
    """Deploys a DeviceRegistry and a LogAnchor pointing at it, both owned by `account`."""

    def default_send(raw: bytes) -> bytes:
        return bytes(w3.eth.send_raw_transaction(raw))

    send = send_raw or default_send

    def create(name: str, *args: Any) -> tuple[str, int]:
        artifact = artifacts.load(name)
        factory = w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
        tx = factory.constructor(*args).build_transaction(
            {
                "from": account.address,
                "nonce": w3.eth.get_transaction_count(account.address, "pending"),
                "chainId": chain_id,
                "gasPrice": w3.eth.gas_price,
            }
        )
        tx["gas"] = with_gas_margin(int(tx["gas"]))
        tx_hash = send(bytes(account.sign_transaction(cast(Any, tx)).raw_transaction))
        receipt = w3.eth.wait_for_transaction_receipt(
            HexBytes(tx_hash), timeout=tx_timeout_s, poll_latency=0.05
        )
        if receipt["status"] != 1 or not receipt["contractAddress"]:
            raise TransactionRevertedError(f"deploy {name}", f"tx {_hex(tx_hash)} failed")
        return str(receipt["contractAddress"]), int(receipt["blockNumber"])

    try:
        chain_id = int(w3.eth.chain_id)
        balance = int(w3.eth.get_balance(account.address))
        if balance == 0:
            raise UnfundedAccountError(account.address, balance)
        registry, block = create(artifacts.REGISTRY)
        log_anchor, _ = create(artifacts.LOG_ANCHOR, registry)
    except ChainError:
        raise
    except (
        requests.exceptions.ConnectionError,
        requests.exceptions.Timeout,
        ConnectionError,
        TimeoutError,
    ) as exc:
        raise ChainUnavailableError(url, f"deploy: {exc}") from exc
    except (Web3Exception, ValueError) as exc:
        if "insufficient funds" in str(exc).lower():
            raise UnfundedAccountError(account.address, 0, str(exc)) from exc
        raise ChainError(f"deploying the contracts on {url} failed: {exc}") from exc
    log.info(
        "deployed DeviceRegistry at %s and LogAnchor at %s on chain %d",
        registry,
        log_anchor,
        chain_id,
    )
    return Deployment(chain_id, registry, log_anchor, block)


def http_web3(url: str, timeout_s: float) -> Web3:
    """A Web3 over HTTP JSON-RPC that fails fast instead of retrying silently."""
    from web3.providers.rpc.utils import ExceptionRetryConfiguration

    provider = Web3.HTTPProvider(
        url,
        request_kwargs={"timeout": timeout_s},
        exception_retry_configuration=cast(ExceptionRetryConfiguration, None),
    )
    return Web3(provider)


def with_gas_margin(estimate: int) -> int:
    """The gas limit to send for an estimate. An estimate runs in the pending block; the
    mined block can differ (its timestamp, say) so that a storage write that was a no-op
    in the estimate costs full price, which would run the transaction out of gas."""
    return estimate * 5 // 4 + GAS_MARGIN


def _reason(exc: Exception) -> str:
    message = getattr(exc, "message", None) or str(exc)
    return str(message).removeprefix("execution reverted: ")


def _hex(value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    return str(value) if str(value).startswith("0x") else "0x" + str(value)
