"""Errors of the chain adapters. Each is a veriot ChainError (or LedgerError) with its facts.

ChainError
├── ChainUnavailableError      the node cannot be reached (retry later)
├── WrongChainError            the node is on another chain than the deployment
├── NoContractError            no contract code at a configured address
├── UnfundedAccountError       the operator account cannot pay for gas
├── ReadOnlyChainError         a write without an operator key
├── TransactionRevertedError   the contract refused the call (carries the reason)
├── NotAnchoredError           no anchor covers what is being verified
└── DeviceNotAuthorizedError   the registry says the device could not write then
LedgerError
└── HistoryRewriteError        the log no longer matches a root anchored on chain
"""

from __future__ import annotations

from veriot.core.errors import ChainError, LedgerError


class ChainUnavailableError(ChainError):
    def __init__(self, url: str, reason: str) -> None:
        self.url, self.reason = url, reason
        super().__init__(f"chain node {url} is unreachable: {reason}")


class WrongChainError(ChainError):
    def __init__(self, got: int, want: int) -> None:
        self.got, self.want = got, want
        super().__init__(f"wrong chain id: got {got}, want {want}")


class NoContractError(ChainError):
    def __init__(self, name: str, address: str, chain_id: int) -> None:
        self.name, self.address, self.chain_id = name, address, chain_id
        super().__init__(
            f"no {name} contract at {address} on chain {chain_id} "
            "(was the node reset? deploy again with `veriot chain deploy`)"
        )


class UnfundedAccountError(ChainError):
    def __init__(self, address: str, balance: int, detail: str = "") -> None:
        self.address, self.balance = address, balance
        extra = f": {detail}" if detail else ""
        super().__init__(
            f"operator account {address} cannot pay for gas (balance {balance} wei){extra}"
        )


class ReadOnlyChainError(ChainError):
    def __init__(self, action: str) -> None:
        super().__init__(f"cannot {action}: the chain client has no operator key (--chain-key)")


class TransactionRevertedError(ChainError):
    def __init__(self, action: str, reason: str) -> None:
        self.action, self.reason = action, reason
        super().__init__(f"{action} reverted: {reason}")


class NotAnchoredError(ChainError):
    def __init__(self, log_id: str, detail: str) -> None:
        self.log_id = log_id
        super().__init__(f"log {log_id}: {detail}")


class DeviceNotAuthorizedError(ChainError):
    def __init__(self, did: str, detail: str) -> None:
        self.did = did
        super().__init__(f"device {did}: {detail}")


class HistoryRewriteError(LedgerError):
    def __init__(self, size: int, anchored: bytes, log_root: bytes, tx_hash: str) -> None:
        self.size, self.anchored, self.log_root, self.tx_hash = size, anchored, log_root, tx_hash
        super().__init__(
            f"history rewritten: at size {size} the log's root is {log_root.hex()}, "
            f"but {anchored.hex()} was anchored on chain (tx {tx_hash})"
        )
