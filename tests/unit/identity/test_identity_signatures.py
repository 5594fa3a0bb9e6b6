"""Ed25519 signing and verification, checked against RFC 8032's published vectors."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from veriot.core.errors import InputError
from veriot.identity import (
    generate_seed,
    public_key_from_seed,
    sign,
    verify_signature,
)

# RFC 8032 section 7.1, TEST 1 (empty message) and TEST 2 (one byte).
RFC8032 = [
    (
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "",
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
        "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    ),
    (
        "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "72",
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
        "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
    ),
]


@pytest.mark.parametrize(("seed", "public", "message", "signature"), RFC8032)
def test_rfc8032_vectors(seed: str, public: str, message: str, signature: str) -> None:
    s, pk, m, sig = (bytes.fromhex(x) for x in (seed, public, message, signature))
    assert public_key_from_seed(s) == pk
    assert sign(s, m) == sig
    assert verify_signature(pk, m, sig)


def test_any_change_breaks_the_signature() -> None:
    seed = generate_seed()
    pk, message = public_key_from_seed(seed), b"veriot.reading.v1\nhello"
    sig = sign(seed, message)
    assert verify_signature(pk, message, sig)
    assert not verify_signature(pk, message + b"\0", sig)
    assert not verify_signature(pk, message[:-1], sig)
    flipped = bytes([sig[0] ^ 1]) + sig[1:]
    assert not verify_signature(pk, message, flipped)
    other = public_key_from_seed(generate_seed())
    assert not verify_signature(other, message, sig)


@pytest.mark.parametrize("length", [0, 63, 65, 128])
def test_a_signature_of_the_wrong_length_is_not_valid(length: int) -> None:
    pk = public_key_from_seed(bytes(32))
    assert not verify_signature(pk, b"m", bytes(length))


@pytest.mark.parametrize("length", [0, 31, 33])
def test_a_public_key_of_the_wrong_length_is_an_input_error(length: int) -> None:
    with pytest.raises(InputError, match=f"got {length}"):
        verify_signature(bytes(length), b"m", bytes(64))


@pytest.mark.parametrize("length", [0, 16, 31, 33, 64])
def test_a_seed_of_the_wrong_length_is_an_input_error(length: int) -> None:
    with pytest.raises(InputError, match=f"got {length}"):
        sign(bytes(length), b"m")
    with pytest.raises(InputError, match=f"got {length}"):
        public_key_from_seed(bytes(length))


def test_seeds_are_random() -> None:
    assert len({generate_seed() for _ in range(8)}) == 8


def test_verification_from_several_threads_agrees() -> None:
    seeds = [bytes([i]) * 32 for i in range(8)]
    jobs = []
    for i, seed in enumerate(seeds):
        message = f"reading {i}".encode()
        jobs.append((public_key_from_seed(seed), message, sign(seed, message), True))
        jobs.append((public_key_from_seed(seed), message + b"!", sign(seed, message), False))
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda j: verify_signature(j[0], j[1], j[2]), jobs * 20))
    assert results == [j[3] for j in jobs] * 20


def test_verify_signatures_answers_each_check_as_verify_signature_does() -> None:
    from veriot.identity.signatures import verify_signatures

    a, b = generate_seed(), generate_seed()
    pa, pb = public_key_from_seed(a), public_key_from_seed(b)
    good_a, good_b = sign(a, b"one"), sign(b, b"two")
    checks = [
        (pa, b"one", good_a),
        (pa, b"one!", good_a),  # altered message
        (pb, b"two", good_b),  # another key in the same run
        (pa, b"two", good_b),  # the wrong key
        (bytearray(pb), b"two", good_b),  # the same key, another type
        (pb, b"two", good_b[:63]),  # a short signature
        (pa, b"one", good_a),
    ]
    want = [True, False, True, False, True, False, True]
    assert verify_signatures(checks) == want  # type: ignore[arg-type]
    assert [verify_signature(bytes(k), m, s) for k, m, s in checks] == want
    with pytest.raises(InputError, match="public key is 32 bytes; got 31"):
        verify_signatures([(pa, b"one", good_a), (pa[:31], b"one", good_a)])
