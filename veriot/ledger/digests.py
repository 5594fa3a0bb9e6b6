"""Many SHA-256 digests in one call, returned as one blob of 32-byte digests.

The log hashes several times per reading: its id, its leaf, its batch's tree, the log's
own tree. `hashlib` takes a call per digest, and for the log's short messages most of
that call is not hashing but a new hash object and a bytes object for the digest. Where
veriot was built with its C extension (`veriot/ledger/_sha256.c`, OpenSSL's SHA-256 in a
loop without the GIL) these functions hash a whole run at once, at 0.16 rather than
0.38 us per 151-byte message; elsewhere (`VERIOT_PURE_PYTHON=1`, no C compiler or no
OpenSSL headers at install) the same results come from hashlib. `NATIVE` says which.

Pure code: no I/O.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Final

__all__ = ["NATIVE", "chunk_digests", "digests", "python_chunk_digests", "python_digests"]


def python_digests(prefix: bytes, messages: Sequence[bytes]) -> bytes:
    """SHA-256(prefix || m) of each of `messages`, concatenated (32 bytes each)."""
    head = hashlib.sha256(prefix)
    out = []
    for message in messages:
        if not isinstance(message, bytes):
            raise TypeError(f"message is {type(message).__name__}, not bytes")
        h = head.copy()
        h.update(message)
        out.append(h.digest())
    return b"".join(out)


def python_chunk_digests(prefix: bytes, blob: bytes, width: int) -> bytes:
    """SHA-256(prefix || chunk) of each `width`-byte chunk of `blob`, concatenated.
    Raises ValueError when `blob` is not a whole number of chunks."""
    if width <= 0 or len(blob) % width:
        raise ValueError(f"a blob of {len(blob)} bytes is not a run of {width}-byte chunks")
    view = memoryview(blob)
    return python_digests(prefix, [bytes(view[i : i + width]) for i in range(0, len(blob), width)])


try:
    from veriot.ledger._sha256 import chunk_digests, digests
except ImportError:  # built without the C extension: the same results through hashlib
    digests = python_digests
    chunk_digests = python_chunk_digests

NATIVE: Final = digests is not python_digests
"""True when the C extension does the hashing."""
