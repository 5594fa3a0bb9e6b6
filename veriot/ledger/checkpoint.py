"""Signed checkpoints: the log's Ed25519 signature over (log id, size, root, timestamp).

The signed bytes are `veriot.core.canonical.checkpoint_body` (see docs/log.md).
"""

from __future__ import annotations

import hashlib

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from veriot.core.canonical import checkpoint_body
from veriot.core.errors import InputError, SignatureError
from veriot.core.types import Checkpoint

PUBLIC_KEY_BYTES = 32
SEED_BYTES = 32
SIGNATURE_BYTES = 64


def log_id_for(public_key: bytes) -> str:
    """The log id of a log key: hex SHA-256 of its 32-byte Ed25519 public key."""
    if len(public_key) != PUBLIC_KEY_BYTES:
        raise InputError(f"a log public key is {PUBLIC_KEY_BYTES} bytes; got {len(public_key)}")
    return hashlib.sha256(public_key).hexdigest()


def log_public_key(seed: bytes) -> bytes:
    """The Ed25519 public key of a 32-byte log key seed."""
    if len(seed) != SEED_BYTES:
        raise InputError(f"a log key seed is {SEED_BYTES} bytes; got {len(seed)}")
    return bytes(SigningKey(seed).verify_key)


def sign_checkpoint(seed: bytes, size: int, root: bytes, timestamp: float) -> Checkpoint:
    """The checkpoint of the tree of `size` leaves with `root`, signed by the log key whose
    32-byte Ed25519 seed is `seed`. Raises InputError for a bad seed, size or root."""
    if len(seed) != SEED_BYTES:
        raise InputError(f"a log key seed is {SEED_BYTES} bytes; got {len(seed)}")
    if size < 0:
        raise InputError(f"a tree size is >= 0; got {size}")
    key = SigningKey(seed)
    log_id = log_id_for(bytes(key.verify_key))
    body = checkpoint_body(log_id, size, root, timestamp)
    signature = bytes(key.sign(body).signature)
    return Checkpoint(log_id=log_id, size=size, root=root, timestamp=timestamp, signature=signature)


def verify_checkpoint(checkpoint: Checkpoint, public_key: bytes) -> None:
    """Checks that `checkpoint` is signed by the log whose Ed25519 key is `public_key`.

    Raises SignatureError when the checkpoint names another log or the signature does not
    verify; InputError when the key or root has the wrong length.
    """
    want_id = log_id_for(public_key)
    if checkpoint.log_id != want_id:
        raise SignatureError(
            f"checkpoint of size {checkpoint.size} names log {checkpoint.log_id}; "
            f"the given key is log {want_id}"
        )
    if len(checkpoint.signature) != SIGNATURE_BYTES:
        raise SignatureError(
            f"checkpoint signature is {len(checkpoint.signature)} bytes; want {SIGNATURE_BYTES}"
        )
    body = checkpoint_body(
        checkpoint.log_id, checkpoint.size, checkpoint.root, checkpoint.timestamp
    )
    try:
        VerifyKey(public_key).verify(body, checkpoint.signature)
    except BadSignatureError:
        raise SignatureError(
            f"checkpoint of size {checkpoint.size} (root {checkpoint.root.hex()}) does not "
            f"verify under log key {public_key.hex()}"
        ) from None
