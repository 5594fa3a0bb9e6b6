"""Builds the wire-format test vectors in this folder from fixed seeds.

    .venv/bin/python tests/vectors/wire/generate.py      # rewrites the *.json files

Ed25519 (RFC 8032) is deterministic, so every signature here is fixed; test_wire_vectors.py
checks that the code still produces exactly these bytes, and checks each vector again with
independent code (PyNaCl directly, base58 by hand, the RFC 9162 tree by recursion).
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2]))  # the repository root, when run as a script

from veriot.core import canonical, wire  # noqa: E402
from veriot.core.types import Reading, Record  # noqa: E402
from veriot.device import DeviceKey, sign_batch, sign_reading  # noqa: E402
from veriot.identity.signatures import sign  # noqa: E402
from veriot.ledger.hashing import leaf_hash  # noqa: E402

RFC8032_TEST1_SEED = bytes.fromhex(
    "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
)
COUNTING_SEED = bytes(range(32))
LOG_SEED = hashlib.sha256(b"veriot test log key").digest()

# From the did:key method's own test vectors (w3c-ccg/did-method-key,
# test-vectors/ed25519-x25519.json): the seed is the Ed25519 private key seed.
W3C_DID_KEY_VECTORS = [
    {
        "seed": "00" * 31 + "00",
        "public_key_base58": "4zvwRjXUKGfvwnParsHAS3HuSVzV5cA4McphgmoCtajS",
        "did": "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp",
    },
    {
        "seed": "00" * 31 + "01",
        "public_key_base58": "6ASf5EcmmEHTgDJ4X4ZT5vT6iHVJBXPg5AN5YoTCpGWt",
        "did": "did:key:z6MkjchhfUsD6mmvni8mCdXHw216Xrm9bQe2mBH1P5RDjVJG",
    },
    {
        "seed": "00" * 31 + "02",
        "public_key_base58": "8pM1DN3RiT8vbom5u1sNryaNT1nyL8CTTW3b5PwWXRBH",
        "did": "did:key:z6MknGc3ocHs3zdPiJbnaaqDi58NGb4pk1Sp9WxWufuXSdxf",
    },
    {
        "seed": "00" * 31 + "03",
        "public_key_base58": "HPYVwAQmskwT1qEEeRzhoomyfyupJGASQQtCXSNG8XS2",
        "did": "did:key:z6MkvqoYXQfDDJRv8L4wKzxYeuKyVZBfi9Qo6Ro8MiLH3kDQ",
    },
    {
        "seed": "00" * 31 + "04",
        "public_key_base58": "J3qYF7YJMKCqQke47UQwiHizgFUXapHxRxKmxbkar89x",
        "did": "did:key:z6MkwW6aqMnjgrhJXFUko3NnZPGzVpkNzhYK7yEhnsibmLwL",
    },
]

T0 = 1764115200.5


def _key_fields(key: DeviceKey) -> dict[str, str]:
    return {"seed": key.seed.hex(), "public_key": key.public_key.hex(), "did": key.did}


def did_key_vectors() -> dict[str, Any]:
    ours = [_key_fields(DeviceKey.from_seed(s)) for s in (RFC8032_TEST1_SEED, COUNTING_SEED)]
    return {
        "description": "Ed25519 did:key: did = 'did:key:z' + base58btc(0xed 0x01 || public key)",
        "w3c": W3C_DID_KEY_VECTORS,
        "veriot": ours,
    }


def reading_vectors() -> dict[str, Any]:
    cases: list[tuple[str, bytes, int, tuple[Record, ...]]] = [
        ("one record with a unit", RFC8032_TEST1_SEED, 12, (Record("temp", 4.2, T0, "Cel"),)),
        (
            "several records, one without a unit, a negative and an integral value",
            COUNTING_SEED,
            0,
            (
                Record("temp", -18.25, T0, "Cel"),
                Record("door", 1.0, T0 + 0.25),
                Record("urn:dev:mac:0024befffe804ff1/humidity", 40.0, T0, "%RH"),
            ),
        ),
        ("the largest sequence number", COUNTING_SEED, 2**63 - 1, (Record("x", 0.1, 0.0),)),
    ]
    vectors = []
    for description, seed, seq, records in cases:
        key = DeviceKey.from_seed(seed)
        signed = sign_reading(key, seq, records)
        message = canonical.reading_message(signed.reading)
        leaf = canonical.reading_leaf(signed, message)
        assert signed.signature is not None
        vectors.append(
            {
                "description": description,
                **_key_fields(key),
                "json": wire.encode_reading(signed),
                "message": message.hex(),
                "signature": signed.signature.hex(),
                "reading_id": canonical.reading_id(message),
                "leaf": leaf.hex(),
                "leaf_hash": leaf_hash(leaf).hex(),
            }
        )
    return {
        "description": "single readings: wire JSON, canonical message, Ed25519 signature over "
        "it, reading id (hex SHA-256 of the message), log leaf and its RFC 9162 leaf hash",
        "readings": vectors,
    }


def batch_vectors() -> dict[str, Any]:
    key = DeviceKey.from_seed(RFC8032_TEST1_SEED)
    readings = [
        Reading(key.did, 100, (Record("temp", 4.5, T0, "Cel"),)),
        Reading(key.did, 101, (Record("temp", 4.75, T0 + 60, "Cel"), Record("door", 0.0, T0 + 60))),
        Reading(key.did, 102, (Record("temp", 5.0, T0 + 120, "Cel"),)),
    ]
    compact, signed = sign_batch(key, readings)
    messages = [canonical.reading_message(r) for r in readings]
    first = signed[0].batch
    assert first is not None
    return {
        "description": "a 3-reading batch: leaf i = RFC 9162 leaf hash of reading message i; "
        "one signature over the batch message (device, size, root)",
        **_key_fields(key),
        "messages": [m.hex() for m in messages],
        "leaf_hashes": [leaf_hash(m).hex() for m in messages],
        "root": first.root.hex(),
        "paths": [[h.hex() for h in s.batch.path] for s in signed if s.batch is not None],
        "batch_message": canonical.batch_message(key.did, len(readings), first.root).hex(),
        "signature": compact.signature.hex(),
        "compact_json": wire.encode_batch(compact),
        "reading_json": [wire.encode_reading(s) for s in signed],
        "leaves": [
            canonical.reading_leaf(s, m).hex() for s, m in zip(signed, messages, strict=True)
        ],
        "request": json.loads(wire.encode_request(batches=[compact])),
    }


def checkpoint_vectors() -> dict[str, Any]:
    log_key = DeviceKey.from_seed(LOG_SEED)
    log_id = hashlib.sha256(log_key.public_key).hexdigest()
    root = hashlib.sha256(b"").digest()
    cases = [(0, root, 1764115200.0), (3, bytes.fromhex("ab" * 32), 1764115260.125)]
    out = []
    for size, r, timestamp in cases:
        body = canonical.checkpoint_body(log_id, size, r, timestamp)
        out.append(
            {
                "size": size,
                "root": r.hex(),
                "timestamp": timestamp,
                "body": body.hex(),
                "signature": sign(LOG_SEED, body).hex(),
            }
        )
    return {
        "description": "checkpoint bodies signed by a log key; log_id = hex SHA-256(public key)",
        "log_seed": LOG_SEED.hex(),
        "log_public_key": log_key.public_key.hex(),
        "log_id": log_id,
        "checkpoints": out,
    }


def all_vectors() -> dict[str, dict[str, Any]]:
    """File name -> contents of every vector file."""
    return {
        "did_key.json": did_key_vectors(),
        "readings.json": reading_vectors(),
        "batch.json": batch_vectors(),
        "checkpoint.json": checkpoint_vectors(),
    }


def render(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2) + "\n"


if __name__ == "__main__":
    for name, doc in all_vectors().items():
        (HERE / name).write_text(render(doc))
        print(f"wrote {HERE / name}")
