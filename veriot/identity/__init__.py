"""Device identity: did:key identifiers, Ed25519 signatures, and the registry's rules."""

from veriot.identity.did import InvalidDidError, did_from_public_key, public_key_from_did
from veriot.identity.registry import NotYetRegisteredError, check_may_write, new_device
from veriot.identity.signatures import (
    PUBLIC_KEY_BYTES,
    SEED_BYTES,
    generate_seed,
    public_key_from_seed,
    sign,
    verify_signature,
)

__all__ = [
    "PUBLIC_KEY_BYTES",
    "SEED_BYTES",
    "InvalidDidError",
    "NotYetRegisteredError",
    "check_may_write",
    "did_from_public_key",
    "generate_seed",
    "new_device",
    "public_key_from_did",
    "public_key_from_seed",
    "sign",
    "verify_signature",
]
