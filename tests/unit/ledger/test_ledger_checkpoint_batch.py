"""Signed checkpoints and device batch trees."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest

from veriot.core.canonical import checkpoint_body
from veriot.core.errors import InputError, ProofError, SignatureError
from veriot.identity.signatures import verify_signature
from veriot.ledger.batch import batch_root, batch_root_from_path, batch_tree
from veriot.ledger.checkpoint import log_id_for, log_public_key, sign_checkpoint, verify_checkpoint
from veriot.ledger.hashing import leaf_hash, node_hash

SEED = bytes(range(32))
ROOT = hashlib.sha256(b"root").digest()


def test_log_id_is_the_hex_sha256_of_the_public_key() -> None:
    pk = log_public_key(SEED)
    assert log_id_for(pk) == hashlib.sha256(pk).hexdigest()
    with pytest.raises(InputError, match="32 bytes; got 31"):
        log_id_for(pk[:31])


def test_checkpoint_signs_the_canonical_body() -> None:
    cp = sign_checkpoint(SEED, 12, ROOT, 1700000000.25)
    pk = log_public_key(SEED)
    assert (cp.log_id, cp.size, cp.root, cp.timestamp) == (log_id_for(pk), 12, ROOT, 1700000000.25)
    assert verify_signature(pk, checkpoint_body(cp.log_id, 12, ROOT, 1700000000.25), cp.signature)
    verify_checkpoint(cp, pk)


@pytest.mark.parametrize(
    "change",
    [
        {"size": 13},
        {"root": hashlib.sha256(b"other").digest()},
        {"timestamp": 1700000000.5},
        {"signature": bytes(64)},
    ],
)
def test_any_change_to_a_checkpoint_breaks_its_signature(change: dict[str, object]) -> None:
    cp = dataclasses.replace(sign_checkpoint(SEED, 12, ROOT, 1700000000.25), **change)  # type: ignore[arg-type]
    with pytest.raises(SignatureError, match="does not verify under log key"):
        verify_checkpoint(cp, log_public_key(SEED))


def test_a_checkpoint_of_another_log_names_both_logs() -> None:
    cp = sign_checkpoint(SEED, 1, ROOT, 0.0)
    other = log_public_key(bytes(32))
    with pytest.raises(SignatureError, match=f"names log {cp.log_id}; the given key is log"):
        verify_checkpoint(cp, other)


def test_bad_seed_is_refused() -> None:
    with pytest.raises(InputError, match="seed is 32 bytes; got 5"):
        sign_checkpoint(b"short", 1, ROOT, 0.0)


def test_batch_of_three() -> None:
    a, b, c = (leaf_hash(x) for x in (b"a", b"b", b"c"))
    root, paths = batch_tree([a, b, c])
    assert root == node_hash(node_hash(a, b), c) == batch_root([a, b, c])
    assert paths == [(b, c), (a, c), (node_hash(a, b),)]
    for i, h in enumerate((a, b, c)):
        assert batch_root_from_path(h, i, 3, paths[i]) == root


def test_batch_of_one_is_its_leaf() -> None:
    h = leaf_hash(b"only")
    assert batch_tree([h]) == (h, [()])


def test_batch_path_of_the_wrong_shape_is_refused() -> None:
    hs = [leaf_hash(bytes([i])) for i in range(5)]
    _, paths = batch_tree(hs)
    with pytest.raises(ProofError, match="has 2 hashes; want 3"):
        batch_root_from_path(hs[1], 1, 5, paths[1][:2])
    with pytest.raises(ProofError, match="outside a tree of size 5"):
        batch_root_from_path(hs[1], 5, 5, paths[1])


def test_empty_batch_and_short_hashes_are_refused() -> None:
    with pytest.raises(InputError, match="at least one reading"):
        batch_tree([])
    with pytest.raises(InputError, match="32 bytes; got 4"):
        batch_tree([b"abcd"])
