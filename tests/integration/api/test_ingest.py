"""Ingest through the real HTTP service: what a device and an operator see."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import LiveService, start_service
from veriot.core.errors import VeriotError
from veriot.core.types import Record, SignedReading
from veriot.core.wire import encode_batch, encode_reading
from veriot.device import DeviceKey, sign_batch, sign_reading
from veriot.ledger.bundle import bundle_from_json, verify_bundle

PROBLEM = "application/problem+json"


def register(
    service: LiveService, key: DeviceKey, name: str = "truck-1", type: str = "cold-chain"
) -> dict[str, Any]:
    with service.client(operator=True) as c:
        r = c.post(
            "/v1/devices", json={"name": name, "type": type, "public_key": key.public_key.hex()}
        )
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def reading(
    key: DeviceKey, seq: int, value: float = 4.2, when: float | None = None
) -> SignedReading:
    t = time.time() if when is None else when
    return sign_reading(
        key, seq, (Record("temperature", value, t, "Cel"), Record("humidity", 80.0, t, "%RH"))
    )


def post(service: LiveService, *signed: SignedReading, **extra: object) -> httpx.Response:
    body: dict[str, object] = {"readings": [encode_reading(s) for s in signed], **extra}
    with service.client() as c:
        return c.post("/v1/readings", json=body)


def log_size(service: LiveService) -> int:
    with service.client() as c:
        return int(c.get("/healthz").json()["log_size"])


def metric(service: LiveService, series: str) -> float:
    """The value of one Prometheus series, e.g. 'veriot_sequence_gaps_total'."""
    with service.client() as c:
        text = c.get("/metrics").text
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def assert_problem(r: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = r.json()
    assert body["type"] == f"/problems/{slug}"
    assert body["status"] == status and body["title"] and body["detail"]
    return body


def test_accepted_reading_is_provable_to_a_signed_checkpoint(service: LiveService) -> None:
    key = DeviceKey.generate()
    register(service, key)
    r = post(service, reading(key, 1), reading(key, 2))
    assert r.status_code == 200
    results = r.json()["results"]
    assert [x["status"] for x in results] == ["accepted", "accepted"]
    assert [x["index"] for x in results] == [0, 1]
    with service.client() as c:
        bundle_json = c.get(f"/v1/readings/{results[1]['id']}/proof").json()
        checkpoint = c.get("/v1/log/checkpoint").json()
    bundle = bundle_from_json(bundle_json)
    verify_bundle(bundle)
    assert bundle.signed.reading.seq == 2
    assert checkpoint["size"] >= 2
    # The bundle is checked by its own content: a changed value no longer verifies.
    tampered = json.loads(json.dumps(bundle_json))
    tampered["reading"]["records"][0]["v"] = 9.9
    with pytest.raises(VeriotError):
        verify_bundle(bundle_from_json(tampered))


def test_consistency_between_checkpoints(service: LiveService) -> None:
    from veriot.core.types import ConsistencyProof
    from veriot.ledger.proof import verify_consistency

    key = DeviceKey.generate()
    register(service, key)
    post(service, *[reading(key, i) for i in range(1, 4)])
    with service.client() as c:
        first = c.get(
            f"/v1/readings/{post(service, reading(key, 4)).json()['results'][0]['id']}/proof"
        ).json()
        post(service, *[reading(key, i) for i in range(5, 12)])
        # a proof for the newest reading forces a newer checkpoint
        newest = post(service, reading(key, 12)).json()["results"][0]["id"]
        second = c.get(f"/v1/readings/{newest}/proof").json()
        a, b = bundle_from_json(first).checkpoint, bundle_from_json(second).checkpoint
        proof = c.get("/v1/log/consistency", params={"first": a.size, "second": b.size}).json()
        bad = c.get("/v1/log/consistency", params={"first": 5, "second": 10**6})
    verify_consistency(
        ConsistencyProof(
            proof["first"], proof["second"], tuple(bytes.fromhex(h) for h in proof["hashes"])
        ),
        a.root,
        b.root,
    )
    assert_problem(bad, 409, "not-yet-provable")


def test_malformed_bodies_get_problems_and_store_nothing(service: LiveService) -> None:
    key = DeviceKey.generate()
    register(service, key)
    good = encode_reading(reading(key, 1))
    bad_bodies = {
        "not json": b"{readings: oops",
        "wrong type": json.dumps({"readings": [{**good, "seq": "one"}]}).encode(),
        "unknown field": json.dumps({"readings": [{**good, "colour": "red"}]}).encode(),
        "bad base64": json.dumps({"readings": [{**good, "sig": "!!!not-base64!!!"}]}).encode(),
        "short signature": json.dumps({"readings": [{**good, "sig": "AAAA"}]}).encode(),
        "no readings": json.dumps({"readings": []}).encode(),
        "bad utf8": b'{"readings": [\xff\xfe]}',
    }
    before = metric(service, 'veriot_readings_rejected_total{reason="malformed"}')
    with service.client() as c:
        for what, body in bad_bodies.items():
            r = c.post("/v1/readings", content=body, headers={"content-type": "application/json"})
            assert r.status_code == 400, what
            assert_problem(r, 400, "malformed-request")
        r = c.post("/v1/readings", content=b"x", headers={"content-type": "text/plain"})
        assert_problem(r, 415, "unsupported-media-type")
    assert log_size(service) == 0
    after = metric(service, 'veriot_readings_rejected_total{reason="malformed"}')
    assert after - before == len(bad_bodies), what


def test_oversized_body_is_refused(service: LiveService) -> None:
    with service.client() as c:
        r = c.post(
            "/v1/readings",
            content=b"[" + b" " * (300 * 1024) + b"]",
            headers={"content-type": "application/json"},
        )
    assert_problem(r, 413, "payload-too-large")
    assert log_size(service) == 0


def test_forged_and_wrong_key_signatures_are_refused(service: LiveService) -> None:
    key, other = DeviceKey.generate(), DeviceKey.generate()
    device = register(service, key)
    register(service, other, name="truck-2")
    honest = reading(key, 1)
    by_other = sign_reading(other, 1, honest.reading.records)
    wrong_key = SignedReading(reading=honest.reading, signature=by_other.signature)
    flipped = bytearray(honest.signature or b"")
    flipped[5] ^= 1
    forged = SignedReading(reading=honest.reading, signature=bytes(flipped))
    for bad in (wrong_key, forged):
        body = assert_problem(post(service, bad), 403, "bad-signature")
        assert body["results"][0]["reason"] == "bad_signature"
    assert log_size(service) == 0
    with service.client(operator=True) as c:
        grade_events = c.get(f"/v1/devices/{device['did']}").json()
    assert grade_events["status"] == "active"
    assert metric(service, 'veriot_readings_rejected_total{reason="bad_signature"}') == 2


def test_a_flood_of_forged_readings_stores_a_bounded_number_of_events(tmp_path: Path) -> None:
    live, server, thread = start_service(tmp_path / "data", security_event_limit=5)
    try:
        key = DeviceKey.generate()
        register(live, key)
        forged = []
        for seq in range(1, 31):
            honest = reading(key, seq)
            signature = bytearray(honest.signature or b"")
            signature[0] ^= 1
            forged.append(SignedReading(reading=honest.reading, signature=bytes(signature)))
        for start in range(0, 30, 10):
            body = assert_problem(post(live, *forged[start : start + 10]), 403, "bad-signature")
            assert [r["reason"] for r in body["results"]] == ["bad_signature"] * 10
        events = live.node.store.list_events(key.did)  # type: ignore[attr-defined]
        assert [e.kind.value for e in events] == ["bad_signature"] * 5
        assert metric(live, 'veriot_readings_rejected_total{reason="bad_signature"}') == 30
        assert metric(live, 'veriot_security_events_dropped_total{kind="bad_signature"}') == 25
        # The device itself is not held back by the flood in its name.
        answer = post(live, reading(key, 31))
        assert answer.status_code == 200, answer.text
        assert log_size(live) == 1
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def test_replay_and_equivocation(service: LiveService) -> None:
    key = DeviceKey.generate()
    register(service, key)
    first = reading(key, 7, value=4.0)
    accepted = post(service, first).json()["results"][0]
    replay = assert_problem(post(service, first), 409, "replay")["results"][0]
    assert replay["reason"] == "replay" and replay["id"] == accepted["id"]
    assert replay["index"] == accepted["index"]
    twin = reading(key, 7, value=-30.0)
    body = assert_problem(post(service, twin), 409, "equivocation")
    assert "two different readings" in body["results"][0]["detail"]
    assert log_size(service) == 1
    events = service.node.store.list_events(key.did)  # type: ignore[attr-defined]
    assert {e.kind.value for e in events} >= {"replay", "equivocation"}


def test_sequence_gap_is_accepted_and_flagged(service: LiveService) -> None:
    key = DeviceKey.generate()
    register(service, key)
    post(service, reading(key, 1))
    r = post(service, reading(key, 5)).json()["results"][0]
    assert r["status"] == "accepted" and r["gap"] is True
    late = post(service, reading(key, 3)).json()["results"][0]
    assert late["status"] == "accepted" and "gap" not in late
    assert metric(service, "veriot_sequence_gaps_total") == 1


def test_clock_skew_unknown_and_revoked_devices(service: LiveService) -> None:
    key, stranger = DeviceKey.generate(), DeviceKey.generate()
    device = register(service, key)
    assert_problem(post(service, reading(key, 1, when=time.time() + 3600)), 422, "clock-skew")
    assert_problem(post(service, reading(stranger, 1)), 403, "unknown-device")
    assert post(service, reading(key, 2)).status_code == 200
    with service.client(operator=True) as c:
        assert c.post(f"/v1/devices/{device['did']}/revoke").json()["status"] == "revoked"
    assert_problem(post(service, reading(key, 3)), 403, "revoked-device")
    assert log_size(service) == 1
    # a forged id leaves nothing behind, not even a security event
    assert service.node.store.list_events(stranger.did) == []  # type: ignore[attr-defined]
    assert metric(service, 'veriot_readings_rejected_total{reason="unknown_device"}') == 1


def test_mixed_request_reports_each_reading(service: LiveService) -> None:
    key = DeviceKey.generate()
    register(service, key)
    good, stranger = reading(key, 1), reading(DeviceKey.generate(), 1)
    r = post(service, good, stranger)
    assert r.status_code == 200
    body = r.json()
    assert body["accepted"] == 1 and body["rejected"] == 1
    assert [x["status"] for x in body["results"]] == ["accepted", "rejected"]
    assert body["results"][1]["reason"] == "unknown_device"


def test_batch_signed_once_keeps_each_reading_provable(service: LiveService) -> None:
    key = DeviceKey.generate()
    register(service, key)
    now = time.time()
    readings = [reading(key, i, value=float(i), when=now).reading for i in range(1, 11)]
    compact, members = sign_batch(key, readings)
    with service.client() as c:
        r = c.post("/v1/readings", json={"batches": [encode_batch(compact)]})
        assert r.status_code == 200, r.text
        ids = [x["id"] for x in r.json()["results"]]
        assert len(ids) == 10
        bundle = bundle_from_json(c.get(f"/v1/readings/{ids[6]}/proof").json())
        # the same reading sent alone with its batch path is a replay, not a new entry
        again = c.post("/v1/readings", json={"readings": [encode_reading(members[6])]})
    verify_bundle(bundle)
    assert bundle.signed.batch is not None and bundle.signed.batch.index == 6
    assert again.json()["results"][0]["reason"] == "replay"
    # a batch whose signature is not the device's is refused whole
    forged = type(compact)(device=compact.device, signature=bytes(64), readings=compact.readings)
    with service.client() as c:
        r = c.post("/v1/readings", json={"batches": [encode_batch(forged)]})
    assert_problem(r, 403, "bad-signature")
    assert log_size(service) == 10


def test_batch_member_ahead_of_the_clock_is_refused_alone(service: LiveService) -> None:
    key = DeviceKey.generate()
    register(service, key)
    now = time.time()
    times = [now, now, now + 3600, now]  # the third is an hour ahead of the receiver
    readings = [reading(key, i + 1, value=float(i), when=t).reading for i, t in enumerate(times)]
    compact, _ = sign_batch(key, readings)
    with service.client() as c:
        r = c.post("/v1/readings", json={"batches": [encode_batch(compact)]})
        assert r.status_code == 200, r.text
        results = r.json()["results"]
        assert [x["status"] for x in results] == ["accepted", "accepted", "rejected", "accepted"]
        assert results[2]["reason"] == "clock_skew"
        bundle = bundle_from_json(c.get(f"/v1/readings/{results[3]['id']}/proof").json())
    verify_bundle(bundle)
    assert bundle.signed.batch is not None and bundle.signed.batch.index == 3
    assert [x["index"] for x in results if x["status"] == "accepted"] == [0, 1, 2]
    assert log_size(service) == 3
    events = service.node.store.list_events(key.did)  # type: ignore[attr-defined]
    # seq 3 was refused, so seq 4 is accepted with a gap
    assert results[3]["gap"] is True
    assert [(e.kind.value, e.seq) for e in events] == [("clock_skew", 3), ("sequence_gap", 4)]


def test_operator_endpoints_need_a_valid_key(service: LiveService) -> None:
    with service.client() as c:
        assert_problem(c.get("/v1/devices"), 401, "unauthorized")
        assert_problem(c.get("/v1/readings"), 401, "unauthorized")
        r = c.post(
            "/v1/devices",
            json={"name": "x", "public_key": "00" * 32},
            headers={"Authorization": "Bearer wrong"},
        )
        assert_problem(r, 401, "unauthorized")
        assert c.get("/problems/unauthorized").json()["status"] == 401


def test_reading_queries_paginate_with_filters(service: LiveService) -> None:
    a, b = DeviceKey.generate(), DeviceKey.generate()
    register(service, a)
    register(service, b, name="meter-1", type="meter")
    t0 = time.time() - 100
    post(service, *[reading(a, i, when=t0 + i) for i in range(1, 26)])
    post(
        service,
        *[sign_reading(b, i, (Record("power", 100.0 + i, t0 + i, "W"),)) for i in range(1, 6)],
    )
    seen: list[int] = []
    cursor = None
    with service.client(operator=True) as c:
        while True:
            params: dict[str, str | int | float] = {"device": a.did, "limit": 10, "since": t0 + 3}
            if cursor:
                params["cursor"] = cursor
            page = c.get("/v1/readings", params=params).json()
            seen += [item["seq"] for item in page["items"]]
            cursor = page["next_cursor"]
            if not cursor:
                break
        power = c.get("/v1/readings", params={"name": "power"}).json()["items"]
        bad = c.get("/v1/readings", params={"cursor": "%%%"})
        bad_limit = c.get("/v1/readings", params={"limit": 0})
    assert seen == list(range(3, 26))
    assert len(power) == 5 and {p["device"] for p in power} == {b.did}
    assert bad.status_code == 422 and bad.headers["content-type"].startswith(PROBLEM)
    assert bad_limit.status_code == 422


def test_restart_keeps_log_devices_and_replay_state(tmp_path: Path) -> None:
    data = tmp_path / "data"
    live, server, thread = start_service(data)
    key = DeviceKey.generate()
    register(live, key)
    first = reading(key, 1)
    ids = [x["id"] for x in post(live, first, reading(key, 2)).json()["results"]]
    server.should_exit = True
    thread.join(timeout=30)

    live, server, thread = start_service(data)
    try:
        assert_problem(post(live, first), 409, "replay")
        r = post(live, reading(key, 3)).json()["results"][0]
        assert r["index"] == 2
        with live.client() as c:
            for rid in [*ids, r["id"]]:
                verify_bundle(bundle_from_json(c.get(f"/v1/readings/{rid}/proof").json()))
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def test_registry_errors_are_problems(service: LiveService) -> None:
    key = DeviceKey.generate()
    register(service, key)
    with service.client(operator=True) as c:
        again = c.post("/v1/devices", json={"name": "twin", "public_key": key.public_key.hex()})
        assert_problem(again, 409, "conflict")
        stranger = DeviceKey.generate().did
        assert_problem(c.post(f"/v1/devices/{stranger}/revoke"), 404, "not-found")
        assert_problem(c.post("/v1/devices/did:key:zNotAKey/revoke"), 422, "invalid-parameter")
        both = c.post(
            "/v1/devices",
            json={"name": "x", "public_key": key.public_key.hex(), "did": key.did},
        )
        assert_problem(both, 400, "malformed-request")
        unknown_field = c.post("/v1/devices", json={"name": "x", "colour": "red"})
        assert_problem(unknown_field, 400, "malformed-request")
        assert len(c.get("/v1/devices").json()["items"]) == 1


def test_a_store_failure_is_a_503_that_keeps_nothing_and_a_retry_lands(
    service: LiveService, monkeypatch: pytest.MonkeyPatch
) -> None:
    from veriot.bootstrap import Node
    from veriot.core.errors import StoreError

    key = DeviceKey.generate()
    register(service, key)
    assert post(service, reading(key, 1)).status_code == 200
    node = service.node
    assert isinstance(node, Node)

    def failing_append(batch: object) -> None:
        raise StoreError("disk full")

    monkeypatch.setattr(node.store, "append", failing_append)
    second = reading(key, 2)
    body = assert_problem(post(service, second), 503, "unavailable")
    assert "disk full" in body["detail"]
    assert [x["reason"] for x in body["results"]] == ["unavailable"]
    monkeypatch.undo()
    assert log_size(service) == 1
    assert metric(service, 'veriot_readings_rejected_total{reason="unavailable"}') == 1

    # the refused reading was not kept, not even as a seen sequence number: it lands now
    r = post(service, second)
    assert r.status_code == 200
    assert [(x["status"], x["index"]) for x in r.json()["results"]] == [("accepted", 1)]


def test_metrics_count_the_leaves_of_each_durable_commit(service: LiveService) -> None:
    key = DeviceKey.generate()
    register(service, key)
    commits = metric(service, "veriot_commit_leaves_count")
    leaves = metric(service, "veriot_commit_leaves_sum")
    assert post(service, *(reading(key, seq) for seq in range(1, 4))).status_code == 200
    assert post(service, reading(key, 4), reading(key, 4)).status_code == 200  # one replayed
    assert metric(service, "veriot_commit_leaves_count") == commits + 2
    assert metric(service, "veriot_commit_leaves_sum") == leaves + 4


def test_metrics_show_how_far_alert_scoring_is_behind(service: LiveService) -> None:
    from veriot.bootstrap import Node

    key = DeviceKey.generate()
    register(service, key)
    assert post(service, *(reading(key, seq) for seq in range(1, 6))).status_code == 200
    node = service.node
    assert isinstance(node, Node) and node.alerts is not None
    node.alerts.flush()
    with service.client() as c:
        lines = c.get("/metrics").text.splitlines()
    assert "veriot_alert_backlog_readings 0.0" in lines
    assert node.alerts.scored >= 10  # both records of each reading reached a detector
