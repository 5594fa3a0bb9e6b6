"""did:key identifiers for Ed25519 keys (W3C CCG did:key method).

    did:key:z<base58btc(0xed 0x01 || public key)>

0xed 0x01 is the unsigned-varint multicodec `ed25519-pub`; 'z' is the multibase prefix of
base58btc (Bitcoin alphabet). Every Ed25519 did:key therefore starts "did:key:z6Mk".
"""

from __future__ import annotations

from functools import lru_cache

import base58

from veriot.core.errors import InputError

DID_KEY_PREFIX = "did:key:"
MULTIBASE_BASE58BTC = "z"
ED25519_PUB_MULTICODEC = b"\xed\x01"
ED25519_PUBLIC_KEY_BYTES = 32
MAX_DID_LENGTH = 128
"""Longer than any did:key veriot accepts; checked before base58 decoding, which is
quadratic in the length of its input."""


class InvalidDidError(InputError):
    """A string that is not the did:key of an Ed25519 public key."""

    def __init__(self, did: object, problem: str) -> None:
        self.did, self.problem = did, problem
        super().__init__(f"{did!r} is not an Ed25519 did:key: {problem}")


def did_from_public_key(public_key: bytes) -> str:
    """The did:key of a 32-byte Ed25519 public key. Raises InputError for other lengths."""
    if len(public_key) != ED25519_PUBLIC_KEY_BYTES:
        raise InputError(
            f"an Ed25519 public key is {ED25519_PUBLIC_KEY_BYTES} bytes; got {len(public_key)}"
        )
    encoded = base58.b58encode(ED25519_PUB_MULTICODEC + bytes(public_key)).decode("ascii")
    return DID_KEY_PREFIX + MULTIBASE_BASE58BTC + encoded


@lru_cache(maxsize=4096)
def public_key_from_did(did: str) -> bytes:
    """The 32-byte Ed25519 public key inside a did:key. Raises InvalidDidError (an
    InputError) for a wrong prefix, multibase, codec or length, or bad base58."""
    if not isinstance(did, str):
        raise InvalidDidError(did, f"want a string, got {type(did).__name__}")
    if len(did) > MAX_DID_LENGTH:
        raise InvalidDidError(did, f"{len(did)} characters; at most {MAX_DID_LENGTH}")
    if not did.startswith(DID_KEY_PREFIX):
        raise InvalidDidError(did, f"want the prefix {DID_KEY_PREFIX!r}")
    multibase = did[len(DID_KEY_PREFIX) :]
    if not multibase.startswith(MULTIBASE_BASE58BTC):
        raise InvalidDidError(did, f"want multibase prefix 'z' (base58btc); got {multibase[:1]!r}")
    try:
        raw = base58.b58decode(multibase[1:].encode("ascii"))
    except (ValueError, UnicodeEncodeError) as exc:
        raise InvalidDidError(did, f"bad base58btc ({exc})") from None
    if raw[:2] != ED25519_PUB_MULTICODEC:
        raise InvalidDidError(
            did, f"multicodec prefix is 0x{raw[:2].hex()}; want 0xed01 (ed25519-pub)"
        )
    key = raw[2:]
    if len(key) != ED25519_PUBLIC_KEY_BYTES:
        raise InvalidDidError(
            did, f"public key is {len(key)} bytes; want {ED25519_PUBLIC_KEY_BYTES}"
        )
    # Leading '1's decode to zero bytes that re-encode differently; insisting on the
    # round trip keeps one did per key, so a did can be compared as a string.
    if did_from_public_key(key) != did:
        raise InvalidDidError(did, "not in canonical base58btc form")
    return key
