"""The DeviceRegistry's rules: who may change it, what each change requires, what it logs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from eth_tester.exceptions import TransactionFailed
from web3 import Web3
from web3.contract import Contract

DID = "did:key:z6MkDevice"
KEY = b"\x11" * 32
KEY2 = b"\x22" * 32
META = b"\x33" * 32


def _reverts(reason: str) -> Any:
    return pytest.raises(TransactionFailed, match=reason)


def _register(registry: Contract, sender: str, did: str = DID, key: bytes = KEY) -> Any:
    return registry.functions.register(did, key, "thermometer", META).transact({"from": sender})


def test_register_records_the_device_and_emits_an_event(
    w3: Web3, registry: Contract, accounts: list[str], events: Callable[..., list[Any]]
) -> None:
    tx = _register(registry, accounts[0])
    stamp = w3.eth.get_block("latest")["timestamp"]
    key, device_type, meta, registered_at, key_since, revoked_at = registry.functions.device(
        DID
    ).call()
    assert (key, device_type, meta) == (KEY, "thermometer", META)
    assert registered_at == key_since == stamp and revoked_at == 0
    assert registry.functions.device_count().call() == 1
    (event,) = events(registry, "DeviceRegistered", tx)
    assert event["did"] == DID and event["public_key"] == KEY and event["time"] == stamp
    assert event["did_hash"] == Web3.keccak(text=DID)


def test_only_the_owner_registers(registry: Contract, accounts: list[str]) -> None:
    with _reverts("caller is not the owner"):
        _register(registry, accounts[1])


def test_a_device_registers_once(registry: Contract, accounts: list[str]) -> None:
    _register(registry, accounts[0])
    with _reverts("device already registered"):
        _register(registry, accounts[0], key=KEY2)


def test_register_rejects_an_empty_did_or_key(registry: Contract, accounts: list[str]) -> None:
    with _reverts("empty did"):
        _register(registry, accounts[0], did="")
    with _reverts("empty public key"):
        _register(registry, accounts[0], key=b"\0" * 32)


def test_rotate_key_replaces_the_key_and_emits_old_and_new(
    registry: Contract, accounts: list[str], events: Callable[..., list[Any]]
) -> None:
    _register(registry, accounts[0])
    tx = registry.functions.rotate_key(DID, KEY2).transact({"from": accounts[0]})
    assert registry.functions.device(DID).call()[0] == KEY2
    (event,) = events(registry, "KeyRotated", tx)
    assert (event["old_key"], event["new_key"]) == (KEY, KEY2)


def test_rotate_key_rules(registry: Contract, accounts: list[str]) -> None:
    with _reverts("unknown device"):
        registry.functions.rotate_key(DID, KEY2).transact({"from": accounts[0]})
    _register(registry, accounts[0])
    with _reverts("caller is not the owner"):
        registry.functions.rotate_key(DID, KEY2).transact({"from": accounts[1]})
    with _reverts("same key"):
        registry.functions.rotate_key(DID, KEY).transact({"from": accounts[0]})
    with _reverts("empty public key"):
        registry.functions.rotate_key(DID, b"\0" * 32).transact({"from": accounts[0]})
    registry.functions.revoke(DID).transact({"from": accounts[0]})
    with _reverts("device is revoked"):
        registry.functions.rotate_key(DID, KEY2).transact({"from": accounts[0]})


def test_revoke_is_final_and_emits_an_event(
    w3: Web3, registry: Contract, accounts: list[str], events: Callable[..., list[Any]]
) -> None:
    _register(registry, accounts[0])
    tx = registry.functions.revoke(DID).transact({"from": accounts[0]})
    stamp = w3.eth.get_block("latest")["timestamp"]
    assert registry.functions.device(DID).call()[5] == stamp
    (event,) = events(registry, "DeviceRevoked", tx)
    assert event["did"] == DID and event["time"] == stamp
    with _reverts("device already revoked"):
        registry.functions.revoke(DID).transact({"from": accounts[0]})
    with _reverts("device already registered"):
        _register(registry, accounts[0], key=KEY2)  # a revoked did cannot come back


def test_revoke_rules(registry: Contract, accounts: list[str]) -> None:
    with _reverts("unknown device"):
        registry.functions.revoke(DID).transact({"from": accounts[0]})
    _register(registry, accounts[0])
    with _reverts("caller is not the owner"):
        registry.functions.revoke(DID).transact({"from": accounts[1]})


def test_unknown_device_reads_as_zero(registry: Contract) -> None:
    assert registry.functions.device("did:key:nobody").call()[3] == 0


def test_ownership_transfer(
    registry: Contract, accounts: list[str], events: Callable[..., list[Any]]
) -> None:
    with _reverts("caller is not the owner"):
        registry.functions.transfer_ownership(accounts[1]).transact({"from": accounts[1]})
    with _reverts("zero owner"):
        registry.functions.transfer_ownership("0x" + "00" * 20).transact({"from": accounts[0]})
    tx = registry.functions.transfer_ownership(accounts[1]).transact({"from": accounts[0]})
    (event,) = events(registry, "OwnershipTransferred", tx)
    assert (event["previous_owner"], event["new_owner"]) == (accounts[0], accounts[1])
    _register(registry, accounts[1])
    with _reverts("caller is not the owner"):
        _register(registry, accounts[0], did="did:key:other")
