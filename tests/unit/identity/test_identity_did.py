"""did:key for Ed25519, checked against the did:key method's published vectors."""

from __future__ import annotations

import base58
import pytest
from nacl.signing import SigningKey

from veriot.core.errors import InputError
from veriot.identity import InvalidDidError, did_from_public_key, public_key_from_did

# w3c-ccg/did-method-key test-vectors/ed25519-x25519.json: seed -> did.
W3C = [
    ("00" * 32, "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp"),
    ("00" * 31 + "01", "did:key:z6MkjchhfUsD6mmvni8mCdXHw216Xrm9bQe2mBH1P5RDjVJG"),
    ("00" * 31 + "02", "did:key:z6MknGc3ocHs3zdPiJbnaaqDi58NGb4pk1Sp9WxWufuXSdxf"),
    ("00" * 31 + "03", "did:key:z6MkvqoYXQfDDJRv8L4wKzxYeuKyVZBfi9Qo6Ro8MiLH3kDQ"),
    ("00" * 31 + "04", "did:key:z6MkwW6aqMnjgrhJXFUko3NnZPGzVpkNzhYK7yEhnsibmLwL"),
]
GOOD = W3C[0][1]


@pytest.mark.parametrize(("seed", "did"), W3C)
def test_published_vectors(seed: str, did: str) -> None:
    public_key = bytes(SigningKey(bytes.fromhex(seed)).verify_key)
    assert did_from_public_key(public_key) == did
    assert public_key_from_did(did) == public_key


def test_every_ed25519_did_key_starts_z6mk() -> None:
    for i in range(20):
        assert did_from_public_key(bytes([i]) * 32).startswith("did:key:z6Mk")


def _did(raw: bytes) -> str:
    return "did:key:z" + base58.b58encode(raw).decode()


@pytest.mark.parametrize(
    ("did", "problem"),
    [
        ("", "prefix 'did:key:'"),
        ("did:web:example.com", "prefix 'did:key:'"),
        ("DID:KEY:" + GOOD[8:], "prefix"),
        ("did:key:" + GOOD[9:], "multibase prefix 'z'"),
        ("did:key:f" + GOOD[9:], "got 'f'"),
        ("did:key:", "got ''"),
        (GOOD[:-1] + "0", "bad base58btc"),
        (GOOD[:-1] + "l", "bad base58btc"),
        (GOOD + "é", "bad base58btc"),
        (_did(b"\xe7\x01" + bytes(33)), "0xe701; want 0xed01"),  # secp256k1-pub
        (_did(b"\xec\x01" + bytes(32)), "0xec01"),  # x25519-pub
        (_did(b"\xed\x01" + bytes(31)), "31 bytes; want 32"),
        (_did(b"\xed\x01" + bytes(33)), "33 bytes; want 32"),
        ("did:key:z", "0x; want"),
        ("did:key:z" + "1" * 200, "at most 128"),
        (GOOD + "#" + GOOD[8:], "bad base58btc"),
    ],
)
def test_malformed_dids_are_refused(did: str, problem: str) -> None:
    with pytest.raises(InvalidDidError, match=problem) as info:
        public_key_from_did(did)
    assert isinstance(info.value, InputError) and repr(did) in str(info.value)


def test_a_non_canonical_base58_form_is_refused() -> None:
    # A leading '1' is a zero byte in base58: same digits, another did for the same key.
    raw = base58.b58decode(GOOD[9:])
    sneaky = "did:key:z1" + base58.b58encode(raw).decode()
    with pytest.raises(InvalidDidError):
        public_key_from_did(sneaky)


def test_not_a_string_is_refused() -> None:
    with pytest.raises(InvalidDidError, match="want a string, got bytes"):
        public_key_from_did(GOOD.encode())  # type: ignore[arg-type, unused-ignore]


@pytest.mark.parametrize("length", [0, 31, 33, 64])
def test_keys_of_the_wrong_length_have_no_did(length: int) -> None:
    with pytest.raises(InputError, match=f"got {length}"):
        did_from_public_key(bytes(length))
