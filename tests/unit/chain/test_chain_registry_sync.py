"""The registry on chain mirrored into the device store: changes through veriot apply at
once; changes made on chain by anyone arrive with the next poll."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from veriot.chain.embedded import EmbeddedChain
from veriot.chain.registry_sync import RegistrySync, metadata_hash
from veriot.core.errors import DeviceExistsError
from veriot.core.types import Device, DeviceStatus
from veriot.storage.memory.store import MemoryStore

DID, KEY, KEY2 = "did:key:z6MkSync", b"\x11" * 32, b"\x22" * 32


@pytest.fixture
def chain(tmp_path: Path) -> EmbeddedChain:
    return EmbeddedChain(tmp_path / "chain")


def test_register_through_veriot_is_on_chain_and_in_the_store(chain: EmbeddedChain) -> None:
    store, seen = MemoryStore(), list[Device]()
    sync = RegistrySync(chain, store, on_change=seen.append)
    device = sync.register(DID, KEY, "thermometer", name="boiler", metadata={"site": "A"})
    on_chain = chain.get_device(DID)
    assert on_chain is not None and on_chain.metadata_hash == metadata_hash({"site": "A"})
    assert store.get_device(DID) == device and seen == [device]
    assert device.registered_at <= on_chain.registered_at
    with pytest.raises(DeviceExistsError):
        sync.register(DID, KEY, "thermometer")


def test_revocation_on_chain_reaches_the_store_with_the_next_poll(
    chain: EmbeddedChain, tmp_path: Path
) -> None:
    store, seen = MemoryStore(), list[Device]()
    sync = RegistrySync(chain, store, on_change=seen.append)
    sync.register(DID, KEY, "t")
    sync.poll()
    other = EmbeddedChain(tmp_path / "chain")  # someone else's client of the same chain
    before = time.time()
    revoked = other.revoke_device(DID)
    assert store.get_device(DID).status is DeviceStatus.ACTIVE  # type: ignore[union-attr]
    assert sync.poll() == 1
    device = store.get_device(DID)
    # in force from the block time, or from when veriot learnt of it if the block's
    # whole-second timestamp runs ahead of the clock
    assert device is not None and device.revoked_at is not None
    assert device.revoked_at <= revoked.timestamp
    assert device.revoked_at == revoked.timestamp or before <= device.revoked_at <= time.time()
    assert seen[-1].status is DeviceStatus.REVOKED


def test_a_fresh_store_is_filled_from_the_chain(chain: EmbeddedChain) -> None:
    chain.register_device(DID, KEY, "t", b"\0" * 32)
    chain.rotate_key(DID, KEY2)
    chain.register_device("did:key:z6MkGone", KEY, "t", b"\0" * 32)
    chain.revoke_device("did:key:z6MkGone")
    store = MemoryStore()
    sync = RegistrySync(chain, store)
    assert sync.poll() == 4
    assert store.get_device(DID).public_key == KEY2  # type: ignore[union-attr]
    assert store.get_device("did:key:z6MkGone").status is DeviceStatus.REVOKED  # type: ignore[union-attr]
    assert sync.poll() == 0
    again = RegistrySync(chain, store)  # a restart rescans; applying twice changes nothing
    again.poll()
    assert {d.did for d in store.list_devices()} == {DID, "did:key:z6MkGone"}


def test_rotation_through_veriot(chain: EmbeddedChain) -> None:
    store = MemoryStore()
    sync = RegistrySync(chain, store)
    sync.register(DID, KEY, "t")
    sync.rotate_key(DID, KEY2)
    assert store.get_device(DID).public_key == KEY2  # type: ignore[union-attr]
    assert chain.get_device(DID).public_key == KEY2  # type: ignore[union-attr]


def test_the_poller_thread_follows_the_chain(chain: EmbeddedChain) -> None:
    store = MemoryStore()
    sync = RegistrySync(chain, store, interval_s=0.01)
    sync.start()
    try:
        chain.register_device(DID, KEY, "t", b"\0" * 32)
        import time

        for _ in range(500):
            if store.get_device(DID) is not None:
                break
            time.sleep(0.01)
    finally:
        sync.stop()
    assert store.get_device(DID) is not None
