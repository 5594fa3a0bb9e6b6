"""veriot.ledger.digests: runs of SHA-256 digests in one call, from the C extension and
from its hashlib fallback, equal to hashlib's one digest at a time."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from veriot.ledger import digests as d

Digests = Callable[[bytes, Sequence[bytes]], bytes]
ChunkDigests = Callable[[bytes, bytes, int], bytes]

BOTH_DIGESTS = pytest.mark.parametrize("digests", [d.digests, d.python_digests], ids=["c", "py"])
BOTH_CHUNKS = pytest.mark.parametrize(
    "chunk_digests", [d.chunk_digests, d.python_chunk_digests], ids=["c", "py"]
)


def _want(prefix: bytes, messages: Sequence[bytes]) -> bytes:
    return b"".join(hashlib.sha256(prefix + m).digest() for m in messages)


@BOTH_DIGESTS
@given(prefix=st.binary(max_size=200), messages=st.lists(st.binary(max_size=300), max_size=40))
def test_digests_equal_one_hashlib_digest_per_message(
    digests: Digests, prefix: bytes, messages: list[bytes]
) -> None:
    assert digests(prefix, messages) == _want(prefix, messages)
    assert digests(prefix, tuple(messages)) == _want(prefix, messages)


@BOTH_CHUNKS
@given(prefix=st.binary(max_size=100), width=st.integers(1, 130), count=st.integers(0, 30))
def test_chunk_digests_hash_each_chunk_of_the_blob(
    chunk_digests: ChunkDigests, prefix: bytes, width: int, count: int
) -> None:
    blob = os.urandom(width * count)
    chunks = [blob[i : i + width] for i in range(0, len(blob), width)]
    assert chunk_digests(prefix, blob, width) == _want(prefix, chunks)


@BOTH_DIGESTS
def test_a_long_run_of_messages_is_hashed_whole(digests: Digests) -> None:
    # Longer than any buffer a loop might reuse, with messages across block boundaries.
    messages = [os.urandom(i % 200) for i in range(5000)]
    assert digests(b"\x00", messages) == _want(b"\x00", messages)


@BOTH_DIGESTS
def test_a_message_that_is_not_bytes_is_refused(digests: Digests) -> None:
    with pytest.raises(TypeError, match="not bytes"):
        digests(b"", [b"ok", "text"])  # type: ignore[list-item]


@BOTH_CHUNKS
def test_a_blob_that_is_not_whole_chunks_is_refused(chunk_digests: ChunkDigests) -> None:
    with pytest.raises(ValueError, match="not a run of 64-byte chunks"):
        chunk_digests(b"\x01", b"x" * 65, 64)
    with pytest.raises(ValueError, match="not a run of 0-byte chunks"):
        chunk_digests(b"\x01", b"", 0)


def test_the_c_extension_refuses_what_is_not_a_sequence() -> None:
    if not d.NATIVE:
        pytest.skip("built without the C extension")
    with pytest.raises(TypeError):
        d.digests(b"", 5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        d.chunk_digests("text", b"", 64)  # type: ignore[arg-type]


def test_without_the_c_extension_the_module_falls_back_to_hashlib(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import importlib
    import sys

    import veriot.ledger

    monkeypatch.setitem(sys.modules, "veriot.ledger._sha256", None)  # import fails
    monkeypatch.delitem(sys.modules, "veriot.ledger.digests")
    monkeypatch.setattr(veriot.ledger, "digests", d)  # put back after the test
    fallback = importlib.import_module("veriot.ledger.digests")
    assert not fallback.NATIVE
    assert fallback.digests is fallback.python_digests
    assert fallback.chunk_digests(b"\x01", b"ab" * 64, 64) == _want(b"\x01", [b"ab" * 32] * 2)
