"""Fresh contracts on a fresh in-memory eth-tester chain for every test."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import pytest
from web3 import EthereumTesterProvider, Web3
from web3.contract import Contract

from veriot.chain import artifacts


@pytest.fixture
def w3() -> Web3:
    return Web3(EthereumTesterProvider())


@pytest.fixture
def accounts(w3: Web3) -> list[str]:
    return list(w3.eth.accounts)


def _deploy(w3: Web3, name: str, sender: str, *args: Any) -> Contract:
    artifact = artifacts.load(name)
    factory = w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
    tx = factory.constructor(*args).transact({"from": sender})
    receipt = w3.eth.wait_for_transaction_receipt(tx)
    return cast(Contract, w3.eth.contract(address=receipt["contractAddress"], abi=artifact.abi))


@pytest.fixture
def registry(w3: Web3, accounts: list[str]) -> Contract:
    return _deploy(w3, artifacts.REGISTRY, accounts[0])


@pytest.fixture
def log_anchor(w3: Web3, accounts: list[str], registry: Contract) -> Contract:
    return _deploy(w3, artifacts.LOG_ANCHOR, accounts[0], registry.address)


@pytest.fixture
def events(w3: Web3) -> Callable[[Contract, str, Any], list[Any]]:
    def get(contract: Contract, name: str, tx: Any) -> list[Any]:
        receipt = w3.eth.wait_for_transaction_receipt(tx)
        return [dict(e["args"]) for e in contract.events[name]().process_receipt(receipt)]

    return get
