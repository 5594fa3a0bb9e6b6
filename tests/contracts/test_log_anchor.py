"""The LogAnchor's rules: only the operator anchors, sizes only grow, views and events."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from eth_tester.exceptions import TransactionFailed
from web3 import Web3
from web3.contract import Contract

LOG = b"\xaa" * 32
OTHER_LOG = b"\xbb" * 32


def _root(n: int) -> bytes:
    return n.to_bytes(32, "big")


def _anchor(
    contract: Contract, sender: str, size: int, log: bytes = LOG, time_ms: int = 1_700_000_000_123
) -> Any:
    return contract.functions.anchor(log, size, _root(size), time_ms).transact({"from": sender})


def test_anchor_is_readable_at_its_size_and_as_latest(
    w3: Web3, log_anchor: Contract, accounts: list[str], events: Callable[..., list[Any]]
) -> None:
    tx = _anchor(log_anchor, accounts[0], 10)
    block = w3.eth.get_block("latest")["number"]
    want = [10, _root(10), 1_700_000_000_123, block]
    assert list(log_anchor.functions.latest(LOG).call()) == want
    assert list(log_anchor.functions.anchor_at(LOG, 10).call()) == want
    assert log_anchor.functions.anchor_count(LOG).call() == 1
    (event,) = events(log_anchor, "Anchored", tx)
    assert event == {
        "log_id": LOG,
        "size": 10,
        "root": _root(10),
        "checkpoint_time_ms": 1_700_000_000_123,
    }


def test_sizes_only_grow(log_anchor: Contract, accounts: list[str]) -> None:
    _anchor(log_anchor, accounts[0], 10)
    with pytest.raises(TransactionFailed, match="size must grow"):
        _anchor(log_anchor, accounts[0], 10)
    with pytest.raises(TransactionFailed, match="size must grow"):
        _anchor(log_anchor, accounts[0], 9)
    _anchor(log_anchor, accounts[0], 11)
    assert log_anchor.functions.latest(LOG).call()[0] == 11
    assert log_anchor.functions.anchor_at(LOG, 10).call()[1] == _root(10)  # history kept


def test_size_zero_is_refused(log_anchor: Contract, accounts: list[str]) -> None:
    with pytest.raises(TransactionFailed, match="size must grow"):
        _anchor(log_anchor, accounts[0], 0)


def test_only_the_operator_anchors(log_anchor: Contract, accounts: list[str]) -> None:
    with pytest.raises(TransactionFailed, match="caller is not the operator"):
        _anchor(log_anchor, accounts[1], 1)


def test_empty_root_and_huge_time_are_refused(log_anchor: Contract, accounts: list[str]) -> None:
    with pytest.raises(TransactionFailed, match="empty root"):
        log_anchor.functions.anchor(LOG, 1, b"\0" * 32, 1).transact({"from": accounts[0]})
    with pytest.raises(TransactionFailed, match="time out of range"):
        log_anchor.functions.anchor(LOG, 1, _root(1), 2**128).transact({"from": accounts[0]})


def test_logs_are_independent(log_anchor: Contract, accounts: list[str]) -> None:
    _anchor(log_anchor, accounts[0], 10)
    _anchor(log_anchor, accounts[0], 3, log=OTHER_LOG)
    assert log_anchor.functions.latest(OTHER_LOG).call()[0] == 3
    assert log_anchor.functions.latest(LOG).call()[0] == 10


def test_missing_anchors_read_as_zero(log_anchor: Contract, accounts: list[str]) -> None:
    assert list(log_anchor.functions.latest(LOG).call()) == [0, b"\0" * 32, 0, 0]
    _anchor(log_anchor, accounts[0], 10)
    assert log_anchor.functions.anchor_at(LOG, 5).call()[0] == 0


def test_registry_address_and_operator_change(
    log_anchor: Contract,
    registry: Contract,
    accounts: list[str],
    events: Callable[..., list[Any]],
) -> None:
    assert log_anchor.functions.registry().call() == registry.address
    with pytest.raises(TransactionFailed, match="caller is not the operator"):
        log_anchor.functions.set_operator(accounts[1]).transact({"from": accounts[1]})
    with pytest.raises(TransactionFailed, match="zero operator"):
        log_anchor.functions.set_operator("0x" + "00" * 20).transact({"from": accounts[0]})
    tx = log_anchor.functions.set_operator(accounts[1]).transact({"from": accounts[0]})
    assert events(log_anchor, "OperatorChanged", tx)[0]["new_operator"] == accounts[1]
    _anchor(log_anchor, accounts[1], 1)
    with pytest.raises(TransactionFailed, match="caller is not the operator"):
        _anchor(log_anchor, accounts[0], 2)


def test_anchor_gas_stays_under_one_per_reading_at_100k(
    w3: Web3, log_anchor: Contract, accounts: list[str]
) -> None:
    _anchor(log_anchor, accounts[0], 100_000)
    tx = _anchor(log_anchor, accounts[0], 200_000)
    gas = w3.eth.wait_for_transaction_receipt(tx)["gasUsed"]
    assert gas < 100_000, f"an anchor costs {gas} gas; at 100,000 readings that is >= 1 per reading"
