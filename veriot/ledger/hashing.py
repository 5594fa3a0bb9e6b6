"""RFC 9162 section 2.1 hashing with SHA-256.

Leaves and interior nodes are hashed under different one-byte prefixes so that no leaf can
be passed off as an interior node (second-preimage resistance, RFC 9162 section 2.1.1).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Final

from veriot.core.columns import FixedRuns
from veriot.core.errors import InputError
from veriot.ledger.digests import digests

LEAF_PREFIX: Final = b"\x00"
"""Domain-separation prefix of a leaf hash: HASH(0x00 || data)."""

NODE_PREFIX: Final = b"\x01"
"""Domain-separation prefix of an interior node hash: HASH(0x01 || left || right)."""

HASH_SIZE: Final = 32
"""Bytes in every hash of the log (SHA-256)."""

EMPTY_ROOT: Final = hashlib.sha256(b"").digest()
"""The root of the empty tree: SHA-256 of the empty string."""

_sha256: Final = hashlib.sha256


def leaf_hash(data: bytes) -> bytes:
    """The RFC 9162 hash of a leaf: SHA-256(0x00 || data)."""
    return _sha256(LEAF_PREFIX + data).digest()


def leaf_hashes(prefix: bytes, tails: Sequence[bytes]) -> bytes:
    """The leaf hashes of `prefix + tail` for each of `tails`, concatenated: what
    [leaf_hash(prefix + tail) for tail in tails] holds, in one call (veriot.ledger.digests)."""
    return digests(LEAF_PREFIX + prefix, tails)


def node_hash(left: bytes, right: bytes) -> bytes:
    """The RFC 9162 hash of an interior node: SHA-256(0x01 || left || right)."""
    return _sha256(NODE_PREFIX + left + right).digest()


def hash_blob(leaf_hashes: Sequence[bytes]) -> bytes:
    """`leaf_hashes` joined into one blob (the blob itself when they are a FixedRuns of
    32-byte hashes). Raises InputError when one of them is not 32 bytes."""
    try:
        return FixedRuns.of(leaf_hashes, HASH_SIZE).blob
    except ValueError:
        bad = next(len(h) for h in leaf_hashes if len(h) != HASH_SIZE)
        raise InputError(f"a leaf hash is {HASH_SIZE} bytes; got {bad}") from None
