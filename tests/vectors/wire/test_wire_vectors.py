"""The wire-format vectors: the code must still produce them, and independent code
(PyNaCl directly, base58 and RFC 9162 written out here) must agree with every one."""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
import struct
from pathlib import Path
from typing import Any

import pytest
from nacl.signing import SigningKey, VerifyKey

from veriot.core import canonical, wire
from veriot.identity import did_from_public_key, public_key_from_did, verify_signature

HERE = Path(__file__).resolve().parent
_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def _load_generator() -> Any:
    spec = importlib.util.spec_from_file_location("wire_vector_generator", HERE / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _vectors(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((HERE / name).read_text())
    return doc


def _b58encode(data: bytes) -> str:
    n = int.from_bytes(data, "big")
    out = ""
    while n:
        n, r = divmod(n, 58)
        out = _B58[r] + out
    return "1" * (len(data) - len(data.lstrip(b"\0"))) + out


def _mth(hashes: list[bytes]) -> bytes:
    """RFC 9162 section 2.1.1, by recursion on the largest power of two below n."""
    if len(hashes) == 1:
        return hashes[0]
    k = 1 << ((len(hashes) - 1).bit_length() - 1)
    return hashlib.sha256(b"\x01" + _mth(hashes[:k]) + _mth(hashes[k:])).digest()


def _path(m: int, hashes: list[bytes]) -> list[bytes]:
    """RFC 9162 section 2.1.3.1: the inclusion path of leaf m, leaf side first."""
    if len(hashes) == 1:
        return []
    k = 1 << ((len(hashes) - 1).bit_length() - 1)
    if m < k:
        return [*_path(m, hashes[:k]), _mth(hashes[k:])]
    return [*_path(m - k, hashes[k:]), _mth(hashes[:k])]


def test_files_match_what_the_code_produces_now() -> None:
    generator = _load_generator()
    for name, doc in generator.all_vectors().items():
        assert (HERE / name).read_text() == generator.render(doc), f"{name} is stale or wrong"


@pytest.mark.parametrize("section", ["w3c", "veriot"])
def test_did_key_vectors(section: str) -> None:
    for v in _vectors("did_key.json")[section]:
        public_key = bytes(SigningKey(bytes.fromhex(v["seed"])).verify_key)
        if "public_key_base58" in v:
            assert _b58encode(public_key) == v["public_key_base58"]
        assert "did:key:z" + _b58encode(b"\xed\x01" + public_key) == v["did"]
        assert did_from_public_key(public_key) == v["did"]
        assert public_key_from_did(v["did"]) == public_key


def test_reading_vectors_by_independent_code() -> None:
    for v in _vectors("readings.json")["readings"]:
        message = bytes.fromhex(v["message"])
        signature = bytes.fromhex(v["signature"])
        public_key = bytes.fromhex(v["public_key"])
        # The message, rebuilt by hand from the JSON with the layout in docs/wire-format.md.
        j = v["json"]
        device = j["device"].encode()
        parts = [b"veriot.reading.v1\n", struct.pack(">H", len(device)), device]
        parts += [struct.pack(">QH", j["seq"], len(j["records"]))]
        for r in j["records"]:
            name, unit = r["n"].encode(), r.get("u", "").encode()
            parts += [struct.pack(">H", len(name)), name, struct.pack(">H", len(unit)), unit]
            parts += [struct.pack(">dd", r["v"], r["t"])]
        assert b"".join(parts) == message, v["description"]
        assert bytes(SigningKey(bytes.fromhex(v["seed"])).verify_key) == public_key
        assert SigningKey(bytes.fromhex(v["seed"])).sign(message).signature == signature
        VerifyKey(public_key).verify(message, signature)
        assert base64.b64decode(j["sig"]) == signature
        assert hashlib.sha256(message).hexdigest() == v["reading_id"]
        leaf = b"\x01\x01" + signature + message
        assert leaf.hex() == v["leaf"]
        assert hashlib.sha256(b"\x00" + leaf).hexdigest() == v["leaf_hash"]


def test_reading_vectors_decode_to_what_was_signed() -> None:
    for v in _vectors("readings.json")["readings"]:
        signed = wire.decode_reading(json.dumps(v["json"]).encode())
        message = canonical.reading_message(signed.reading)
        assert message.hex() == v["message"]
        assert signed.signature is not None
        assert verify_signature(bytes.fromhex(v["public_key"]), message, signed.signature)
        assert canonical.parse_reading_message(message) == signed.reading


def test_batch_vector_by_independent_code() -> None:
    v = _vectors("batch.json")
    messages = [bytes.fromhex(m) for m in v["messages"]]
    leaves = [hashlib.sha256(b"\x00" + m).digest() for m in messages]
    assert [h.hex() for h in leaves] == v["leaf_hashes"]
    root = _mth(leaves)
    assert root.hex() == v["root"]
    assert [[h.hex() for h in _path(i, leaves)] for i in range(len(leaves))] == v["paths"]
    device = v["did"].encode()
    batch_message = b"veriot.batch.v1\n" + struct.pack(">H", len(device)) + device
    batch_message += struct.pack(">I", len(messages)) + root
    assert batch_message.hex() == v["batch_message"]
    signature = bytes.fromhex(v["signature"])
    VerifyKey(bytes.fromhex(v["public_key"])).verify(batch_message, signature)
    for message, leaf in zip(messages, v["leaves"], strict=True):
        expected = b"\x01\x02" + root + struct.pack(">I", len(messages)) + signature + message
        assert expected.hex() == leaf


def test_batch_vector_decodes_as_both_compact_and_per_reading_forms() -> None:
    v = _vectors("batch.json")
    decoded = wire.decode_request(json.dumps(v["request"]).encode())
    (batch,) = decoded.batches
    assert batch.signature.hex() == v["signature"]
    assert [canonical.reading_message(r).hex() for r in batch.readings] == v["messages"]
    for i, j in enumerate(v["reading_json"]):
        signed = wire.decode_reading(j)
        assert signed.batch is not None and signed.signature is None
        assert (signed.batch.index, signed.batch.size) == (i, 3)
        assert [h.hex() for h in signed.batch.path] == v["paths"][i]
        assert signed.batch.root.hex() == v["root"]
        assert canonical.reading_leaf(signed).hex() == v["leaves"][i]


def test_checkpoint_vectors_by_independent_code() -> None:
    v = _vectors("checkpoint.json")
    public_key = bytes(SigningKey(bytes.fromhex(v["log_seed"])).verify_key)
    assert public_key.hex() == v["log_public_key"]
    assert hashlib.sha256(public_key).hexdigest() == v["log_id"]
    log_id = v["log_id"].encode()
    for c in v["checkpoints"]:
        body = b"veriot.checkpoint.v1\n" + struct.pack(">H", len(log_id)) + log_id
        body += struct.pack(">Q", c["size"]) + bytes.fromhex(c["root"])
        body += struct.pack(">d", c["timestamp"])
        assert body.hex() == c["body"]
        assert (
            canonical.checkpoint_body(
                v["log_id"], c["size"], bytes.fromhex(c["root"]), c["timestamp"]
            ).hex()
            == c["body"]
        )
        VerifyKey(public_key).verify(body, bytes.fromhex(c["signature"]))
