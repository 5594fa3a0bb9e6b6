"""An in-process EVM chain (eth-tester over py-evm) whose state survives restarts.

py-evm keeps its state in memory, so the chain is kept as a journal: a header line with the
genesis time, then one line per transaction with its raw signed bytes and its block's
timestamp. Everything else is fixed (genesis parameters, the well-known eth-tester accounts,
a prevrandao derived from the parent block), so replaying the journal rebuilds the same
blocks, hashes and contract state. A line is written and fsynced *before* its transaction is
applied: a transaction a caller saw mined is never lost, and a line whose transaction was
refused is refused again on replay.

Several processes may open the same directory: a writer takes an exclusive lock on the
journal, replays what others appended, then writes; a reader (`veriot chain serve`) replays
new lines before each request.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_tester import EthereumTester, PyEVMBackend
from eth_tester.backends.pyevm.main import get_default_account_keys
from eth_tester.exceptions import TransactionFailed
from eth_utils.crypto import keccak
from web3 import EthereumTesterProvider, Web3
from web3.exceptions import ContractLogicError

from veriot.chain.web3_client import Deployment, Web3Chain, deploy
from veriot.core.errors import ChainError

log = logging.getLogger(__name__)

JOURNAL = "journal.jsonl"
DEPLOYMENT = "deployment.json"
JOURNAL_VERSION = 1


class _DeterministicBackend(PyEVMBackend):  # type: ignore[misc]
    """PyEVMBackend whose blocks depend only on their transactions and timestamps."""

    def mine_blocks(self, num_blocks: int = 1, coinbase: bytes = b"\0" * 20) -> tuple[bytes, ...]:
        hashes = []
        for _ in range(num_blocks):
            header = self.chain.header
            # eth-tester draws prevrandao at random; derive it so replays match
            mix = keccak(bytes(header.parent_hash) + header.block_number.to_bytes(8, "big"))
            block = self.chain.mine_block(coinbase=coinbase, mix_hash=mix)
            hashes.append(block.hash)
        return tuple(hashes)

    def set_next_timestamp(self, timestamp: int) -> None:
        self.chain.header = self.chain.header.copy(timestamp=timestamp)

    def parent_timestamp(self) -> int:
        return int(self.chain.get_canonical_head().timestamp)


class EmbeddedChain(Web3Chain):
    """The default chain: lives in `directory` (created when absent), deploys veriot's
    contracts on first use. `clock` gives the wall time that block timestamps follow."""

    _revert_errors = (ContractLogicError, TransactionFailed)

    def __init__(self, directory: Path, *, clock: Callable[[], float] = time.time) -> None:
        self._directory = directory
        self._clock = clock
        directory.mkdir(parents=True, exist_ok=True)
        self._journal_path = directory / JOURNAL
        self._offset = 0
        with self._locked_journal() as fh:
            header = self._read_or_write_header(fh)
        genesis_ts = int(header["genesis_timestamp"])
        params = PyEVMBackend.generate_genesis_params(overrides={"timestamp": genesis_ts})
        self._backend = _DeterministicBackend(genesis_parameters=params)
        self._tester = EthereumTester(self._backend)
        w3 = Web3(EthereumTesterProvider(self._tester))
        key = get_default_account_keys(quantity=1)[0]
        account = cast(LocalAccount, Account.from_key(key.to_bytes()))
        self._provider_w3 = w3
        self._catch_up()  # replay before anything reads the state
        deployment = Deployment.load(directory / DEPLOYMENT)
        if deployment is None:
            with self._locked_journal():
                self._catch_up()
                deployment = Deployment.load(directory / DEPLOYMENT)
                if deployment is None:
                    deployment = deploy(w3, account, self._journal_and_send)
                    deployment.save(directory / DEPLOYMENT)
        super().__init__(w3, deployment, account, url=f"embedded:{directory}")
        self.check()

    @property
    def directory(self) -> Path:
        return self._directory

    @property
    def provider(self) -> EthereumTesterProvider:
        return cast(EthereumTesterProvider, self._provider_w3.provider)

    # --- Web3Chain hooks ---------------------------------------------------------------

    @contextlib.contextmanager
    def _write_scope(self) -> Iterator[None]:
        with self._locked_journal():
            self._catch_up()
            yield

    def _refresh(self) -> None:
        self._catch_up()

    def _send_raw(self, raw: bytes) -> bytes:
        return self._journal_and_send(raw)

    # --- the journal -------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked_journal(self) -> Iterator[Any]:
        with open(self._journal_path, "a+b") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                self._cut_torn_tail(fh)
                yield fh
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    def _cut_torn_tail(self, fh: Any) -> None:
        """A crash mid-write leaves a line without its newline: drop it (its transaction
        was never applied, since lines are written before their transaction)."""
        size = fh.seek(0, os.SEEK_END)
        if size == 0:
            return
        fh.seek(max(0, size - 65536))
        tail = fh.read()
        if tail.endswith(b"\n"):
            return
        cut = tail.rfind(b"\n")
        keep = size - len(tail) + cut + 1 if cut >= 0 else 0
        log.warning("embedded chain journal %s: dropping a torn last line", self._journal_path)
        fh.truncate(keep)
        os.fsync(fh.fileno())

    def _read_or_write_header(self, fh: Any) -> dict[str, Any]:
        fh.seek(0)
        first = fh.readline()
        if first:
            try:
                header = json.loads(first)
                version = header["veriot_chain_journal"]
            except (ValueError, KeyError, TypeError) as exc:
                raise ChainError(f"{self._journal_path} is not a veriot chain journal") from exc
            if version != JOURNAL_VERSION:
                raise ChainError(f"chain journal version: got {version}, want {JOURNAL_VERSION}")
            return cast(dict[str, Any], header)
        header = {
            "veriot_chain_journal": JOURNAL_VERSION,
            "genesis_timestamp": int(self._clock()) - 1,
        }
        fh.write(json.dumps(header).encode() + b"\n")
        fh.flush()
        os.fsync(fh.fileno())
        return header

    def _catch_up(self) -> None:
        """Applies the journal lines appended since the last call (by us or others)."""
        with open(self._journal_path, "rb") as fh:
            fh.seek(self._offset)
            data = fh.read()
        end = data.rfind(b"\n")
        if end < 0:
            return
        for line in data[: end + 1].splitlines():
            if self._offset == 0:
                self._offset += len(line) + 1  # the header
                continue
            entry = json.loads(line)
            self._apply(int(entry["t"]), bytes.fromhex(entry["tx"]))
            self._offset += len(line) + 1

    def _apply(self, timestamp: int, raw: bytes) -> bytes | None:
        self._backend.set_next_timestamp(timestamp)
        try:
            return bytes.fromhex(str(self._tester.send_raw_transaction("0x" + raw.hex()))[2:])
        except Exception as exc:  # refused now means refused on every replay too
            log.debug("embedded chain refused a transaction: %s", exc)
            return None

    def _journal_and_send(self, raw: bytes) -> bytes:
        """Writes the transaction to the journal, then mines it in its own block.
        Precondition: the journal lock is held and the state is caught up."""
        timestamp = max(int(self._clock()), self._backend.parent_timestamp() + 1)
        line = json.dumps({"t": timestamp, "tx": raw.hex()}).encode() + b"\n"
        with open(self._journal_path, "ab") as fh:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())
        self._offset += len(line)
        self._backend.set_next_timestamp(timestamp)
        try:
            return bytes.fromhex(str(self._tester.send_raw_transaction("0x" + raw.hex()))[2:])
        except Exception as exc:
            raise ChainError(f"the embedded chain refused the transaction: {exc}") from exc

    def read_rpc(self, method: str, params: list[Any]) -> Any:
        """Answers a read-only JSON-RPC call against the current state (used by rpc_server)."""
        with self._lock:
            self._catch_up()
            return self._provider_w3.manager.request_blocking(cast(Any, method), params)
