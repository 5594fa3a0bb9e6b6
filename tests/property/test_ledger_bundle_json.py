"""Any bundle survives the JSON round trip exactly (floats included)."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from veriot.core.canonical import reading_message
from veriot.core.types import Checkpoint, InclusionProof, Reading, Record, SignedReading
from veriot.ledger.bundle import ProofBundle, bundle_from_json, bundle_to_json

hashes = st.binary(min_size=32, max_size=32)
finite = st.floats(allow_nan=False, allow_infinity=False)
records = st.builds(
    Record,
    name=st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True),
    value=finite,
    time=st.floats(min_value=0, max_value=2e9),
    unit=st.sampled_from(["", "Cel", "%RH", "m/s2"]),
)
bundles = st.builds(
    ProofBundle,
    signed=st.builds(
        SignedReading,
        reading=st.builds(
            Reading,
            device=st.just("did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK"),
            seq=st.integers(0, 2**63 - 1),
            records=st.lists(records, min_size=1, max_size=4).map(tuple),
        ),
        signature=st.binary(min_size=64, max_size=64),
    ),
    device_public_key=hashes,
    inclusion=st.builds(
        InclusionProof,
        index=st.integers(0, 2**40),
        size=st.integers(0, 2**40),
        hashes=st.lists(hashes, max_size=8).map(tuple),
    ),
    checkpoint=st.builds(
        Checkpoint,
        log_id=st.from_regex(r"[0-9a-f]{64}", fullmatch=True),
        size=st.integers(0, 2**63),
        root=hashes,
        timestamp=finite,
        signature=st.binary(min_size=64, max_size=64),
    ),
    log_public_key=hashes,
)


@settings(max_examples=150, deadline=None)
@given(bundles)
def test_json_round_trip_is_exact(bundle: ProofBundle) -> None:
    again = bundle_from_json(json.loads(json.dumps(bundle_to_json(bundle))))
    assert again == bundle
    # == on floats hides -0.0 vs 0.0; the signed bytes do not.
    assert reading_message(again.signed.reading) == reading_message(bundle.signed.reading)
