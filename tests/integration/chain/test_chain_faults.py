"""Bad configuration and failing nodes: each gives a clear, typed error or a retry, never a
silent loss."""

from __future__ import annotations

from pathlib import Path

import pytest
from eth_account import Account

from tests.conftest import free_port
from tests.integration.chain.conftest import Anvil, start_anvil
from tests.integration.chain.logkit import MiniLog, SimDevice
from veriot.chain.anchorer import Anchorer
from veriot.chain.bootstrap import deploy_contracts, open_chain
from veriot.chain.errors import (
    ChainUnavailableError,
    NoContractError,
    UnfundedAccountError,
    WrongChainError,
)
from veriot.chain.web3_client import Deployment, Web3Chain, load_key
from veriot.config import Settings
from veriot.core.errors import InputError

pytestmark = pytest.mark.anvil


@pytest.fixture
def deployment(anvil: Anvil, anvil_key: Path, tmp_path: Path) -> Deployment:
    return deploy_contracts(anvil.url, anvil_key, tmp_path)


def test_wrong_chain_id_is_refused(anvil: Anvil, anvil_key: Path, deployment: Deployment) -> None:
    wrong = Deployment(1, deployment.registry, deployment.log_anchor)
    with pytest.raises(WrongChainError, match="got 31337, want 1"):
        Web3Chain.connect(anvil.url, wrong, load_key(anvil_key))


def test_no_contract_at_the_address(anvil: Anvil, anvil_key: Path, deployment: Deployment) -> None:
    empty = "0x" + "12" * 20
    missing = Deployment(deployment.chain_id, deployment.registry, empty)
    with pytest.raises(NoContractError, match=f"no LogAnchor contract at {empty}"):
        Web3Chain.connect(anvil.url, missing, load_key(anvil_key))


def test_unfunded_key(anvil: Anvil, deployment: Deployment, tmp_path: Path) -> None:
    key_file = tmp_path / "poor.key"
    poor = Account.create()
    key_file.write_text(poor.key.hex())
    with pytest.raises(UnfundedAccountError, match=f"{poor.address}.*balance 0 wei"):
        Web3Chain.connect(anvil.url, deployment, load_key(key_file))
    with pytest.raises(UnfundedAccountError):
        deploy_contracts(anvil.url, key_file, tmp_path / "other")


def test_bad_key_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.key"
    path.write_text("not a key")
    with pytest.raises(InputError, match="does not hold a 32-byte hex private key"):
        load_key(path)
    with pytest.raises(InputError, match="cannot read"):
        load_key(tmp_path / "absent.key")


def test_unreachable_node(tmp_path: Path, anvil_key: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    settings = Settings(data_dir=tmp_path, chain=url, chain_key=anvil_key)
    with pytest.raises(ChainUnavailableError, match=f"{url} is unreachable"):
        open_chain(settings)


def test_serve_settings_deploy_once_and_reuse(
    anvil: Anvil, anvil_key: Path, tmp_path: Path
) -> None:
    settings = Settings(data_dir=tmp_path, chain=anvil.url, chain_key=anvil_key)
    first = open_chain(settings)
    second = open_chain(settings)
    assert second.anchor_address == first.anchor_address


def test_node_down_mid_run_then_back_anchors_everything(tmp_path: Path, anvil_key: Path) -> None:
    """anvil stops (its state saved) while readings keep coming; the anchorer keeps the
    checkpoint pending and retries; when the node is back the latest checkpoint is anchored
    and covers every checkpoint signed meanwhile."""
    node = start_anvil(state=tmp_path / "anvil-state.json")
    try:
        settings = Settings(data_dir=tmp_path / "data", chain=node.url, chain_key=anvil_key)
        chain = open_chain(settings)
        log, device = MiniLog(), SimDevice(b"\x05" * 32)
        now = [0.0]
        anchorer = Anchorer(chain, log, interval_s=1.0, clock=lambda: now[0])
        log.add(device, 1, 1e9)
        log.checkpoint()
        assert anchorer.step() is not None

        node.stop()
        for seq in range(2, 6):  # ingestion goes on
            log.add(device, seq, 1e9)
            log.checkpoint()
            now[0] += 100
            assert anchorer.step() is None
        assert anchorer.status()["pending"] and anchorer.status()["failures"] == 4
        assert "unreachable" in (anchorer.last_error or "")

        node.start()  # same port, same state
        now[0] += 1000
        caught_up = anchorer.step()
        assert caught_up is not None and caught_up.size == 5
        assert [a.size for a in chain.list_anchors(log.log_id)] == [1, 5]
        assert not anchorer.status()["pending"]
    finally:
        node.stop()


def test_node_reset_loses_the_contracts_and_says_so(tmp_path: Path, anvil_key: Path) -> None:
    node = start_anvil()
    try:
        settings = Settings(data_dir=tmp_path, chain=node.url, chain_key=anvil_key)
        open_chain(settings)
        node.stop()
        node.start()  # a fresh anvil: no state
        with pytest.raises(NoContractError, match="was the node reset"):
            open_chain(settings)
    finally:
        node.stop()
