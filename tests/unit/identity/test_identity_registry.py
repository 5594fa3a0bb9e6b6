"""The registry's rule: who may write, and when."""

from __future__ import annotations

import pytest

from veriot.core.errors import InputError, RevokedDeviceError, UnknownDeviceError
from veriot.core.types import Device
from veriot.identity import (
    NotYetRegisteredError,
    check_may_write,
    did_from_public_key,
    new_device,
    public_key_from_seed,
)

PK = public_key_from_seed(bytes(32))
DID = did_from_public_key(PK)


def device(registered_at: float = 100.0, revoked_at: float | None = None) -> Device:
    return Device(DID, PK, "fridge-7", "fridge", registered_at, revoked_at)


def test_an_active_device_may_write() -> None:
    d = device()
    assert check_may_write(d, DID, 100.0) is d
    assert check_may_write(d, DID, 1e9) is d


def test_an_unknown_device_may_not() -> None:
    with pytest.raises(UnknownDeviceError, match=f"device {DID} is not registered") as info:
        check_may_write(None, DID, 100.0)
    assert info.value.did == DID


def test_a_revoked_device_may_not_from_its_revocation_on() -> None:
    d = device(revoked_at=200.0)
    assert check_may_write(d, DID, 199.9) is d
    for at in (200.0, 300.0):
        with pytest.raises(RevokedDeviceError, match=r"revoked at 200\.000") as info:
            check_may_write(d, DID, at)
        assert info.value.revoked_at == 200.0


def test_a_device_may_not_write_before_it_was_registered() -> None:
    with pytest.raises(NotYetRegisteredError, match=r"registered at 100\.000, after 99\.000"):
        check_may_write(device(), DID, 99.0)
    with pytest.raises(UnknownDeviceError):  # callers handling unknown devices catch it too
        check_may_write(device(), DID, 99.0)


def test_another_devices_record_is_a_caller_bug() -> None:
    with pytest.raises(InputError, match="registry returned device"):
        check_may_write(device(), "did:key:z6MkjchhfUsD6mmvni8mCdXHw216Xrm9bQe2mBH1P5RDjVJG", 150.0)


def test_new_device_derives_its_did_from_its_key() -> None:
    d = new_device(PK, "fridge-7", "fridge", 100.0, {"site": "lyon"})
    assert (d.did, d.public_key, d.registered_at, d.revoked_at) == (DID, PK, 100.0, None)
    assert d.metadata == {"site": "lyon"}


def test_new_device_refuses_bad_keys_and_empty_names() -> None:
    with pytest.raises(InputError, match="32 bytes"):
        new_device(PK[:31], "x", "t", 1.0)
    with pytest.raises(InputError, match="needs a name"):
        new_device(PK, "", "t", 1.0)
