"""Signing single readings and batches: what the receiver will check must hold."""

from __future__ import annotations

import pytest

from veriot.core import canonical, wire
from veriot.core.errors import InputError
from veriot.core.types import Reading, Record
from veriot.device import DeviceKey, sign_batch, sign_reading
from veriot.identity import verify_signature
from veriot.ledger.batch import batch_root_from_path
from veriot.ledger.hashing import leaf_hash

KEY = DeviceKey.from_seed(bytes(range(32)))
RECORDS = (Record("temp", 4.5, 1000.0, "Cel"),)


def test_sign_reading_signs_the_canonical_message() -> None:
    signed = sign_reading(KEY, 3, RECORDS)
    assert signed.reading == Reading(KEY.did, 3, RECORDS) and signed.batch is None
    assert signed.signature is not None
    message = canonical.reading_message(signed.reading)
    assert verify_signature(KEY.public_key, message, signed.signature)


def test_sign_reading_is_deterministic() -> None:
    assert sign_reading(KEY, 3, RECORDS) == sign_reading(KEY, 3, list(RECORDS))


@pytest.mark.parametrize(
    ("seq", "records"),
    [(-1, RECORDS), (2**63, RECORDS), (1, ()), (1, (Record("bad name", 1.0, 1.0),))],
)
def test_sign_reading_refuses_unencodable_readings(seq: int, records: tuple[Record, ...]) -> None:
    with pytest.raises(InputError):
        sign_reading(KEY, seq, records)


def readings(n: int, device: str = KEY.did) -> list[Reading]:
    return [
        Reading(device, 10 + i, (Record("temp", float(i), 1000.0 + i, "Cel"),)) for i in range(n)
    ]


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 13])
def test_every_batched_reading_is_provable_alone(n: int) -> None:
    batch, signed = sign_batch(KEY, readings(n))
    assert batch.device == KEY.did and batch.readings == tuple(readings(n))
    assert [s.reading for s in signed] == readings(n)
    for i, s in enumerate(signed):
        auth = s.batch
        assert auth is not None and s.signature is None
        assert (auth.index, auth.size, auth.signature) == (i, n, batch.signature)
        # What a verifier does with this reading alone: rebuild the root from the path,
        # then check the one signature over the batch message.
        leaf = leaf_hash(canonical.reading_message(s.reading))
        assert batch_root_from_path(leaf, i, n, auth.path) == auth.root
        message = canonical.batch_message(KEY.did, n, auth.root)
        assert verify_signature(KEY.public_key, message, auth.signature)


def test_a_batch_round_trips_through_the_wire() -> None:
    batch, signed = sign_batch(KEY, readings(3))
    decoded = wire.decode_request(wire.encode_request(signed, [batch]))
    assert decoded.readings == signed and decoded.batches == [batch]


def test_a_batch_of_another_devices_readings_is_refused() -> None:
    other = DeviceKey.from_seed(bytes(32))
    with pytest.raises(InputError, match="this key is"):
        sign_batch(KEY, [*readings(2), *readings(1, other.did)])


def test_an_empty_batch_is_refused() -> None:
    with pytest.raises(InputError, match="at least one"):
        sign_batch(KEY, [])
