"""Signature checks shipped to worker processes answer as verification in the caller."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from veriot.core.types import Device, Record
from veriot.device import DeviceKey, sign_reading
from veriot.ingest.verdict import Reason, Verdict
from veriot.ingest.verify import Checked, Verifier
from veriot.ingest.verify_pool import MIN_SHIPPED, ProcessVerifier


@pytest.fixture(scope="module")
def pool() -> Iterator[ProcessVerifier]:
    verifier = ProcessVerifier(2)
    yield verifier
    verifier.close()


def test_pool_verifies_like_the_caller(pool: ProcessVerifier) -> None:
    key, other = DeviceKey.generate(), DeviceKey.generate()
    now = time.time()
    device = Device(key.did, key.public_key, "truck", "cold-chain", 0.0)
    signed = [sign_reading(key, i, (Record("temperature", 4.0, now, "Cel"),)) for i in range(20)]
    # reading 5 signed by another key, reading 11 with its signature cut short
    forged = sign_reading(other, 5, signed[5].reading.records)
    signed[5] = type(forged)(signed[5].reading, signature=forged.signature)
    signed[11] = type(forged)(signed[11].reading, signature=signed[11].signature[:-1])  # type: ignore[index]
    local = Verifier({key.did: device}.get, 60.0)
    shipped = Verifier({key.did: device}.get, 60.0, verify_many=pool)
    assert len(signed) >= MIN_SHIPPED
    want = local.check(signed, [], now)
    got = shipped.check(signed, [], now)
    assert got.items == want.items
    assert got.events == want.events
    bad = [i for i, item in enumerate(got.items) if isinstance(item, Verdict)]
    assert bad == [5, 11]
    assert all(
        isinstance(v, Verdict) and v.reason is Reason.BAD_SIGNATURE
        for v in (got.items[5], got.items[11])
    )
    assert all(isinstance(got.items[i], Checked) for i in range(20) if i not in bad)
    # fewer checks than MIN_SHIPPED are verified on the calling thread, with the same answer
    assert shipped.check(signed[3:6], [], now).items == want.items[3:6]


def test_pool_needs_a_process() -> None:
    with pytest.raises(ValueError, match="at least one"):
        ProcessVerifier(0)
