"""The registry's rules: which device may write, and how a registered device is built.

Pure functions over Device values; the store that holds them is a port (DeviceStore).
"""

from __future__ import annotations

from collections.abc import Mapping

from veriot.core.errors import InputError, RevokedDeviceError, UnknownDeviceError
from veriot.core.types import Device
from veriot.identity.did import did_from_public_key


class NotYetRegisteredError(UnknownDeviceError):
    """The device exists but was registered after the time in question."""

    def __init__(self, did: str, registered_at: float, at: float) -> None:
        super().__init__(did)
        self.registered_at, self.at = registered_at, at
        self.args = (f"device {did} was registered at {registered_at:.3f}, after {at:.3f}",)


def check_may_write(device: Device | None, did: str, at: float) -> Device:
    """Returns `device` when the device `did` may write at time `at`.

    `device` is what the registry holds for `did` (None when nothing). Raises
    UnknownDeviceError when there is no such device (NotYetRegisteredError when it was
    registered after `at`), RevokedDeviceError when it was revoked at or before `at`,
    and InputError when `device` is some other device's record (a caller bug).
    """
    if device is None:
        raise UnknownDeviceError(did)
    if device.did != did:
        raise InputError(f"registry returned device {device.did} for {did}")
    if device.revoked_at is not None and at >= device.revoked_at:
        raise RevokedDeviceError(did, device.revoked_at)
    if at < device.registered_at:
        raise NotYetRegisteredError(did, device.registered_at, at)
    return device


def new_device(
    public_key: bytes,
    name: str,
    type: str,
    registered_at: float,
    metadata: Mapping[str, str] | None = None,
) -> Device:
    """A Device for `public_key` whose did is derived from the key, as every did must be.

    Raises InputError for a key that is not 32 bytes or an empty name.
    """
    if not name:
        raise InputError("a device needs a name")
    return Device(
        did=did_from_public_key(public_key),
        public_key=bytes(public_key),
        name=name,
        type=type,
        registered_at=registered_at,
        metadata=dict(metadata or {}),
    )
