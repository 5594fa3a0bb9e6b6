"""Ed25519 signatures (RFC 8032) over exact message bytes, through PyNaCl (libsodium).

libsodium runs without the GIL, so callers may verify on several threads at once.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from functools import lru_cache

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from veriot.core.errors import InputError

PUBLIC_KEY_BYTES = 32
SEED_BYTES = 32
SIGNATURE_BYTES = 64
VERIFY_KEY_CACHE_SIZE = 8192
"""Distinct public keys whose VerifyKey objects are kept: one per active device is ideal."""


@lru_cache(maxsize=VERIFY_KEY_CACHE_SIZE)
def _verify_key(public_key: bytes) -> VerifyKey:
    return VerifyKey(public_key)


def verify_signature(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """True when `signature` is `public_key`'s Ed25519 signature over exactly `message`.

    A signature of the wrong length is simply not valid (False). Raises InputError when
    `public_key` is not 32 bytes, since keys come from the registry, not the sender.
    Safe to call from several threads; the work runs without the GIL.
    """
    if len(public_key) != PUBLIC_KEY_BYTES:
        raise InputError(
            f"an Ed25519 public key is {PUBLIC_KEY_BYTES} bytes; got {len(public_key)}"
        )
    if len(signature) != SIGNATURE_BYTES:
        return False
    try:
        _verify_key(bytes(public_key)).verify(message, signature)
    except BadSignatureError:
        return False
    return True


def _signing_key(seed: bytes) -> SigningKey:
    if len(seed) != SEED_BYTES:
        raise InputError(f"an Ed25519 seed is {SEED_BYTES} bytes; got {len(seed)}")
    return SigningKey(bytes(seed))


def sign(seed: bytes, message: bytes) -> bytes:
    """The 64-byte Ed25519 signature of the key with 32-byte `seed` over `message`.

    Deterministic (RFC 8032): the same seed and message always give the same signature.
    Callers signing many messages with one key should keep a DeviceKey instead, which
    expands the seed once.
    """
    signature: bytes = _signing_key(seed).sign(message).signature
    return signature


def public_key_from_seed(seed: bytes) -> bytes:
    """The 32-byte Ed25519 public key of a 32-byte seed."""
    return bytes(_signing_key(seed).verify_key)


def generate_seed() -> bytes:
    """32 bytes from the operating system's CSPRNG: a new Ed25519 private key."""
    return os.urandom(SEED_BYTES)


SignatureCheck = tuple[bytes, bytes, bytes]
"""(public key, message, signature)."""

VerifyMany = Callable[[Sequence[SignatureCheck]], list[bool]]
"""Verifies several signatures at once: one bool per (public key, message, signature)."""


def verify_signatures(checks: Sequence[SignatureCheck]) -> list[bool]:
    """verify_signature for each (public key, message, signature), in order. Runs in any
    process: worker processes of a ProcessPoolExecutor call it with a request's checks.

    A request's checks are usually of one device's key, so the key is looked up once per
    run of the same key rather than once per signature."""
    out: list[bool] = []
    key: bytes | None = None
    verify_key: VerifyKey | None = None
    for public_key, message, signature in checks:
        if verify_key is None or public_key != key:
            if len(public_key) != PUBLIC_KEY_BYTES:
                raise InputError(
                    f"an Ed25519 public key is {PUBLIC_KEY_BYTES} bytes; got {len(public_key)}"
                )
            key, verify_key = public_key, _verify_key(bytes(public_key))
        if len(signature) != SIGNATURE_BYTES:
            out.append(False)
            continue
        try:
            verify_key.verify(message, signature)
        except BadSignatureError:
            out.append(False)
        else:
            out.append(True)
    return out
