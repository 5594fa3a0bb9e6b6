"""One conformance suite for the ChainClient port, run against the embedded chain and a
real anvil node."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.chain.conftest import Anvil
from veriot.chain.bootstrap import deploy_contracts
from veriot.chain.embedded import EmbeddedChain
from veriot.chain.errors import ReadOnlyChainError, TransactionRevertedError
from veriot.chain.rpc_server import ChainRpcServer
from veriot.chain.web3_client import Web3Chain, load_key
from veriot.ports import DEVICE_REGISTERED, DEVICE_REVOKED, KEY_ROTATED, ChainClient

DID = "did:key:z6MkConformance"
KEY, KEY2, META = b"\x11" * 32, b"\x22" * 32, b"\x33" * 32
LOG = "ab" * 32


@pytest.fixture(params=["embedded", pytest.param("anvil", marks=pytest.mark.anvil)])
def chain(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ChainClient]:
    if request.param == "embedded":
        client: ChainClient = EmbeddedChain(tmp_path / "chain")
    else:
        node: Anvil = request.getfixturevalue("anvil")
        key: Path = request.getfixturevalue("anvil_key")
        deployment = deploy_contracts(node.url, key, tmp_path)  # fresh contracts per test
        client = Web3Chain.connect(node.url, deployment, load_key(key))
    yield client
    client.close()


def test_register_and_read_back(chain: ChainClient) -> None:
    receipt = chain.register_device(DID, KEY, "thermometer", META)
    device = chain.get_device(DID)
    assert device is not None
    assert (device.public_key, device.device_type, device.metadata_hash) == (
        KEY,
        "thermometer",
        META,
    )
    assert device.registered_at == receipt.timestamp and device.revoked_at is None
    assert chain.get_device("did:key:nobody") is None
    events = chain.device_events(receipt.block)
    assert [(e.kind, e.did, e.tx_hash) for e in events] == [
        (DEVICE_REGISTERED, DID, receipt.tx_hash)
    ]


def test_register_twice_is_refused_with_the_reason(chain: ChainClient) -> None:
    chain.register_device(DID, KEY, "thermometer", META)
    with pytest.raises(TransactionRevertedError, match="device already registered"):
        chain.register_device(DID, KEY2, "thermometer", META)


def _tick(chain: ChainClient) -> None:
    """Makes the next block at least a second later (anvil may give blocks equal times;
    the embedded chain always steps)."""
    if isinstance(chain, Web3Chain) and not isinstance(chain, EmbeddedChain):
        chain.web3.provider.make_request("evm_increaseTime", [1])  # type: ignore[arg-type]


def test_rotation_and_revocation_history(chain: ChainClient) -> None:
    registered = chain.register_device(DID, KEY, "t", META)
    _tick(chain)
    rotated = chain.rotate_key(DID, KEY2)
    _tick(chain)
    revoked = chain.revoke_device(DID)
    kinds = [e.kind for e in chain.device_events(registered.block) if e.did == DID]
    assert kinds == [DEVICE_REGISTERED, KEY_ROTATED, DEVICE_REVOKED]
    before = chain.device_at(DID, rotated.timestamp - 0.5)
    after = chain.device_at(DID, rotated.timestamp)
    assert before is not None and after is not None
    assert before.public_key == KEY and after.public_key == KEY2
    assert after.revoked_at == revoked.timestamp
    assert not after.active_at(revoked.timestamp) and after.active_at(rotated.timestamp)
    with pytest.raises(TransactionRevertedError, match="device already revoked"):
        chain.revoke_device(DID)


def test_anchor_and_read_back(chain: ChainClient) -> None:
    assert chain.latest_anchor(LOG) is None
    first = chain.anchor(LOG, 10, b"\x01" * 32, 1_700_000_000.25)
    second = chain.anchor(LOG, 25, b"\x02" * 32, 1_700_000_005.5)
    assert first.chain_id == chain.chain_id() and first.contract == chain.anchor_address
    assert chain.latest_anchor(LOG) == second
    assert chain.anchor_at(LOG, 10) == first
    assert chain.anchor_at(LOG, 11) is None
    assert chain.list_anchors(LOG) == [first, second]
    assert second.timestamp == 1_700_000_005.5 and second.block > first.block


def test_sizes_only_grow(chain: ChainClient) -> None:
    chain.anchor(LOG, 10, b"\x01" * 32, 1.0)
    with pytest.raises(TransactionRevertedError, match="size must grow"):
        chain.anchor(LOG, 10, b"\x09" * 32, 2.0)
    assert chain.anchor_at(LOG, 10) is not None
    assert chain.anchor_at(LOG, 10).root == b"\x01" * 32  # type: ignore[union-attr]


def test_read_only_client_finds_the_registry_and_cannot_write(chain: ChainClient) -> None:
    """What a third party does: only a node URL and the anchor's contract address."""
    anchor = chain.anchor(LOG, 3, b"\x01" * 32, 1.0)
    chain.register_device(DID, KEY, "t", META)
    with contextlib.ExitStack() as stack:
        if isinstance(chain, EmbeddedChain):  # served over JSON-RPC like `veriot chain serve`
            server = ChainRpcServer(EmbeddedChain(chain.directory))
            server.start()
            stack.callback(server.close)
            url = server.url
        else:
            assert isinstance(chain, Web3Chain)
            url = chain.url
        reader = Web3Chain.for_anchor_contract(url, anchor.chain_id, anchor.contract)
        assert reader.registry_address == chain.registry_address
        assert reader.anchor_at(LOG, 3) == anchor
        assert reader.device_at(DID, 2e9) == chain.device_at(DID, 2e9)
        later = chain.anchor(LOG, 4, b"\x02" * 32, 2.0)
        assert reader.latest_anchor(LOG) == later  # the reader follows new blocks
        with pytest.raises(ReadOnlyChainError):
            reader.anchor(LOG, 5, b"\x01" * 32, 1.0)
