# pragma version ~=0.4.3
"""
@title veriot DeviceRegistry
@notice The source of truth for which devices may write to a veriot log. The owner
        registers a device (its did:key, Ed25519 public key, type and the hash of its
        metadata), rotates its key, or revokes it. Every change emits an event so that a
        cache can follow the registry, and a verifier can rebuild a device's key history.
        Times are block timestamps (seconds).
"""

MAX_DID: constant(uint256) = 128
MAX_TYPE: constant(uint256) = 64

struct Device:
    public_key: bytes32
    device_type: String[MAX_TYPE]
    metadata_hash: bytes32
    registered_at: uint256
    key_since: uint256
    revoked_at: uint256  # 0 while the device is active

event DeviceRegistered:
    did_hash: indexed(bytes32)
    did: String[MAX_DID]
    public_key: bytes32
    device_type: String[MAX_TYPE]
    metadata_hash: bytes32
    time: uint256

event KeyRotated:
    did_hash: indexed(bytes32)
    did: String[MAX_DID]
    old_key: bytes32
    new_key: bytes32
    time: uint256

event DeviceRevoked:
    did_hash: indexed(bytes32)
    did: String[MAX_DID]
    time: uint256

event OwnershipTransferred:
    previous_owner: indexed(address)
    new_owner: indexed(address)

owner: public(address)
device_count: public(uint256)
_devices: HashMap[bytes32, Device]


@deploy
def __init__():
    self.owner = msg.sender


@internal
@view
def _only_owner():
    assert msg.sender == self.owner, "caller is not the owner"


@external
def register(did: String[MAX_DID], public_key: bytes32, device_type: String[MAX_TYPE],
             metadata_hash: bytes32):
    """
    @notice Registers a new device. Reverts unless the caller is the owner, the did is
            non-empty and unknown, and the key is non-zero.
    """
    self._only_owner()
    assert len(did) > 0, "empty did"
    assert public_key != empty(bytes32), "empty public key"
    did_hash: bytes32 = keccak256(did)
    assert self._devices[did_hash].registered_at == 0, "device already registered"
    self._devices[did_hash] = Device(
        public_key=public_key,
        device_type=device_type,
        metadata_hash=metadata_hash,
        registered_at=block.timestamp,
        key_since=block.timestamp,
        revoked_at=0,
    )
    self.device_count += 1
    log DeviceRegistered(
        did_hash=did_hash, did=did, public_key=public_key, device_type=device_type,
        metadata_hash=metadata_hash, time=block.timestamp,
    )


@external
def rotate_key(did: String[MAX_DID], new_key: bytes32):
    """
    @notice Replaces the key of an active device. Reverts for an unknown or revoked device,
            a zero key, or the key it already has.
    """
    self._only_owner()
    did_hash: bytes32 = keccak256(did)
    device: Device = self._devices[did_hash]
    assert device.registered_at != 0, "unknown device"
    assert device.revoked_at == 0, "device is revoked"
    assert new_key != empty(bytes32), "empty public key"
    assert new_key != device.public_key, "same key"
    self._devices[did_hash].public_key = new_key
    self._devices[did_hash].key_since = block.timestamp
    log KeyRotated(
        did_hash=did_hash, did=did, old_key=device.public_key, new_key=new_key,
        time=block.timestamp,
    )


@external
def revoke(did: String[MAX_DID]):
    """
    @notice Revokes a device for good. Reverts for an unknown or already revoked device.
    """
    self._only_owner()
    did_hash: bytes32 = keccak256(did)
    assert self._devices[did_hash].registered_at != 0, "unknown device"
    assert self._devices[did_hash].revoked_at == 0, "device already revoked"
    self._devices[did_hash].revoked_at = block.timestamp
    log DeviceRevoked(did_hash=did_hash, did=did, time=block.timestamp)


@external
def transfer_ownership(new_owner: address):
    self._only_owner()
    assert new_owner != empty(address), "zero owner"
    log OwnershipTransferred(previous_owner=self.owner, new_owner=new_owner)
    self.owner = new_owner


@external
@view
def device(did: String[MAX_DID]) -> Device:
    """
    @notice The device's current record; registered_at == 0 when it is unknown.
    """
    return self._devices[keccak256(did)]
