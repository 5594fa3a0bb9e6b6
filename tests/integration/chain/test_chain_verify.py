"""Verifying a reading against the chain: what a third party can check with a bundle and a
node, and the `veriot verify` check of anchored roots against the log."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.chain.logkit import MiniLog, SimDevice
from veriot.chain.embedded import EmbeddedChain
from veriot.chain.errors import NotAnchoredError, WrongChainError
from veriot.chain.rpc_server import ChainRpcServer
from veriot.chain.verify import (
    check_anchors_against_log,
    verify_bundle_on_chain,
    verify_on_chain,
)
from veriot.chain.web3_client import Web3Chain
from veriot.core.errors import RevokedDeviceError, RootMismatchError, SignatureError
from veriot.core.types import NodeId
from veriot.identity.registry import NotYetRegisteredError
from veriot.ledger.audit import FindingKind
from veriot.ledger.bundle import ProofBundle
from veriot.ports import Anchor

DAY = 86_400.0


@dataclasses.dataclass
class World:
    chain: EmbeddedChain
    log: MiniLog
    device: SimDevice
    t0: float  # when the device was registered (block time)

    def anchor_latest(self) -> Anchor:
        cp = self.log.latest_checkpoint()
        assert cp is not None
        return self.chain.anchor(cp.log_id, cp.size, cp.root, cp.timestamp)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    chain = EmbeddedChain(tmp_path / "chain")
    device = SimDevice(b"\x09" * 32)
    receipt = chain.register_device(device.did, device.public_key, "thermometer", b"\0" * 32)
    yield World(chain, MiniLog(), device, float(receipt.timestamp))
    chain.close()


def _bundle(world: World, readings: int = 3, anchor_after: int = 0) -> ProofBundle:
    """Reading 0 in a checkpoint of `readings` leaves; the anchor `anchor_after` leaves later
    (a consistency proof links the two)."""
    for seq in range(readings):
        world.log.add(world.device, seq, world.t0 + 10 + seq)
    world.log.checkpoint(world.t0 + 20)
    for seq in range(readings, readings + anchor_after):
        world.log.add(world.device, seq, world.t0 + 10 + seq)
    world.log.checkpoint(world.t0 + 30)
    anchor = world.anchor_latest()
    return world.log.bundle(0, readings, anchor)


def test_a_bundle_verifies_against_the_chain(world: World) -> None:
    bundle = _bundle(world)
    assert verify_on_chain(bundle, world.chain) == bundle.anchor


def test_a_checkpoint_older_than_the_anchor_uses_a_consistency_proof(world: World) -> None:
    bundle = _bundle(world, readings=3, anchor_after=5)
    assert bundle.consistency is not None and bundle.anchor is not None
    assert (bundle.consistency.first, bundle.anchor.size) == (3, 8)
    verify_on_chain(bundle, world.chain)


def test_a_third_party_verifies_over_json_rpc(world: World) -> None:
    bundle = _bundle(world)
    assert bundle.anchor is not None
    server = ChainRpcServer(EmbeddedChain(world.chain.directory))
    server.start()
    try:
        reader = Web3Chain.for_anchor_contract(
            server.url, bundle.anchor.chain_id, bundle.anchor.contract
        )
        verify_on_chain(bundle, reader)
        assert verify_bundle_on_chain(bundle, server.url) == bundle.anchor
        revoked = world.chain.revoke_device(world.device.did)
        world.log.add(world.device, 50, revoked.timestamp + 1)
        cp = world.log.checkpoint(revoked.timestamp + 2)
        late = world.log.bundle(world.log.tree.size - 1, cp.size, world.anchor_latest())
        with pytest.raises(RevokedDeviceError):
            verify_bundle_on_chain(late, server.url)
    finally:
        server.close()


def test_made_yesterday_still_verifies_today(tmp_path: Path) -> None:
    yesterday = time.time() - DAY
    chain = EmbeddedChain(tmp_path / "chain", clock=lambda: yesterday)
    device = SimDevice(b"\x0a" * 32)
    chain.register_device(device.did, device.public_key, "t", b"\0" * 32)
    log = MiniLog()
    log.add(device, 1, yesterday + 5)
    cp = log.checkpoint(yesterday + 6)
    chain.anchor(cp.log_id, cp.size, cp.root, cp.timestamp)
    blocks = [chain.web3.eth.get_block(n)["hash"] for n in range(chain.block_number() + 1)]
    chain.close()

    today = EmbeddedChain(tmp_path / "chain")  # a restart: state replayed from the journal
    bundle = log.bundle(0, 1, today.latest_anchor(cp.log_id))
    verify_on_chain(bundle, today)
    assert [today.web3.eth.get_block(n)["hash"] for n in range(len(blocks))] == blocks
    assert today.register_device("did:key:z6MkNew", b"\x01" * 32, "t", b"\0" * 32).block == (
        len(blocks)
    )


def test_a_reading_after_revocation_is_refused(world: World) -> None:
    revoked = world.chain.revoke_device(world.device.did)
    world.log.add(world.device, 0, revoked.timestamp + 1)
    cp = world.log.checkpoint(revoked.timestamp + 2)
    bundle = world.log.bundle(0, cp.size, world.anchor_latest())
    with pytest.raises(RevokedDeviceError, match="was revoked at"):
        verify_on_chain(bundle, world.chain)


def test_a_reading_before_registration_is_refused(world: World) -> None:
    world.log.add(world.device, 0, world.t0 - 3600)
    cp = world.log.checkpoint(world.t0)
    bundle = world.log.bundle(0, cp.size, world.anchor_latest())
    with pytest.raises(NotYetRegisteredError, match="was registered at"):
        verify_on_chain(bundle, world.chain)


def test_an_unregistered_device_is_refused(world: World) -> None:
    stranger = SimDevice(b"\x0b" * 32)
    world.log.add(stranger, 0, world.t0 + 1)
    cp = world.log.checkpoint(world.t0 + 2)
    bundle = world.log.bundle(0, cp.size, world.anchor_latest())
    with pytest.raises(KeyError, match=f"device {stranger.did} is not registered"):
        verify_on_chain(bundle, world.chain)


def test_a_rotated_key_no_longer_signs(world: World) -> None:
    rotated = world.chain.rotate_key(world.device.did, b"\x44" * 32)
    world.log.add(world.device, 0, rotated.timestamp + 1)
    cp = world.log.checkpoint(rotated.timestamp + 2)
    bundle = world.log.bundle(0, cp.size, world.anchor_latest())
    with pytest.raises(SignatureError, match="the registry's key"):
        verify_on_chain(bundle, world.chain)


def test_an_anchor_the_contract_does_not_hold_is_refused(world: World) -> None:
    bundle = _bundle(world)
    assert bundle.anchor is not None
    world.log.add(world.device, 99, world.t0 + 40)
    cp = world.log.checkpoint(world.t0 + 41)
    forged = dataclasses.replace(bundle.anchor, size=cp.size, root=cp.root)
    with pytest.raises(NotAnchoredError, match=f"no anchor at size {cp.size}"):
        verify_on_chain(world.log.bundle(0, cp.size, forged), world.chain)


def test_a_root_other_than_the_anchored_one_is_refused(world: World, tmp_path: Path) -> None:
    """A log that forked: its bundle is self-consistent, but the chain anchored another root."""
    bundle = _bundle(world)
    assert bundle.anchor is not None
    fork = MiniLog()
    other = SimDevice(b"\x0c" * 32)
    for seq in range(bundle.anchor.size):
        fork.add(world.device if seq == 0 else other, seq, world.t0 + 10 + seq)
    cp = fork.checkpoint(world.t0 + 30)
    fake = dataclasses.replace(bundle.anchor, root=cp.root)
    with pytest.raises(RootMismatchError):
        verify_on_chain(fork.bundle(0, cp.size, fake), world.chain)


def test_a_bundle_from_another_chain_is_refused(world: World) -> None:
    bundle = _bundle(world)
    assert bundle.anchor is not None
    other = dataclasses.replace(bundle, anchor=dataclasses.replace(bundle.anchor, chain_id=1))
    with pytest.raises(WrongChainError, match="want 1"):
        verify_on_chain(other, world.chain)


def test_a_bundle_without_anchor_is_refused(world: World) -> None:
    bundle = _bundle(world)
    with pytest.raises(NotAnchoredError, match="no anchor"):
        verify_on_chain(dataclasses.replace(bundle, anchor=None, consistency=None), world.chain)


def test_anchored_roots_are_checked_against_the_log(world: World) -> None:
    _bundle(world, readings=3, anchor_after=2)
    log = world.log
    assert check_anchors_against_log(world.chain, log.log_id, log.fetch, log.tree.size) == []

    # rewrite history: the subtree over leaves 0..3, under the anchor of size 5
    log.nodes[NodeId(2, 0)] = b"\xee" * 32
    findings = check_anchors_against_log(world.chain, log.log_id, log.fetch, log.tree.size)
    assert [f.kind for f in findings] == [FindingKind.ANCHOR_MISMATCH]
    assert findings[0].index == 5 and "anchored in tx" in findings[0].detail

    truncated = check_anchors_against_log(world.chain, log.log_id, log.fetch, 4)
    assert any("only 4 leaves" in f.detail for f in truncated)
