"""The fast builders of core values make the same values as the constructors."""

from __future__ import annotations

import gc
import sys

from veriot.core import canonical
from veriot.core.types import (
    BatchAuth,
    Reading,
    Record,
    SignedReading,
    StoredReading,
    build_batch_auth,
    build_signed,
    build_stored,
)
from veriot.ingest.service import tune_gc_for_service

DID = "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp"
ROOT = bytes(range(32))
SIG = bytes(range(64))


def test_builders_equal_the_constructors() -> None:
    record = Record("temp", 4.5, 1000.0, "Cel")
    reading = Reading(DID, 7, (record,))
    auth = build_batch_auth(ROOT, 4, 2, (ROOT, ROOT), SIG)
    assert auth == BatchAuth(ROOT, 4, 2, (ROOT, ROOT), SIG)
    signed = build_signed(reading, None, auth)
    assert signed == SignedReading(reading, None, auth)
    stored = build_stored("ab" * 32, 9, signed, ROOT, 5.0, True, b"m")
    assert stored == StoredReading("ab" * 32, 9, signed, ROOT, 5.0, True, b"m")
    assert stored.message == b"m" and hash(record) == hash(Record("temp", 4.5, 1000.0, "Cel"))


def test_leaf_prefixes_start_the_leaves() -> None:
    reading = Reading(DID, 3, (Record("temp", 4.5, 1000.0, "Cel"),))
    message = canonical.reading_message(reading)
    for index in range(4):
        signed = SignedReading(reading, batch=BatchAuth(ROOT, 4, index, (ROOT, ROOT), SIG))
        prefix = canonical.batch_leaf_prefix(ROOT, 4, SIG)
        assert canonical.reading_leaf(signed, message) == prefix + message
    alone = SignedReading(reading, signature=SIG)
    assert canonical.reading_leaf(alone, message) == canonical.signature_leaf_prefix(SIG) + message


def test_service_gc_settings_collect_gen0_less_often() -> None:
    before, interval = gc.get_threshold(), sys.getswitchinterval()
    try:
        tune_gc_for_service()
        assert gc.get_threshold()[0] > before[0]
        assert gc.get_freeze_count() > 0
        assert sys.getswitchinterval() < interval  # threads waking for a request wait less
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
        sys.setswitchinterval(interval)
