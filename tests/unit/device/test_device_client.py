"""DeviceClient against a fake server (httpx.MockTransport)."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from veriot.core import wire
from veriot.core.types import Record
from veriot.device import (
    Accepted,
    DeviceClient,
    DeviceClientError,
    DeviceKey,
    Rejected,
    sign_batch,
    sign_reading,
)

KEY = DeviceKey.from_seed(bytes(range(32)))
RECORDS = (Record("temp", 4.5, 1000.0, "Cel"),)


def client(handler: Callable[[httpx.Request], httpx.Response]) -> DeviceClient:
    return DeviceClient("http://veriot.test/", transport=httpx.MockTransport(handler))


def echo_server(requests: list[httpx.Request]) -> Callable[[httpx.Request], httpx.Response]:
    """Accepts even sequence numbers, rejects odd ones, like a real server would answer."""

    def handle(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        decoded = wire.decode_request(request.content)
        seqs = [s.reading.seq for s in decoded.readings]
        seqs += [r.seq for b in decoded.batches for r in b.readings]
        results = [
            {"status": "accepted", "id": f"id{s}", "index": s}
            if s % 2 == 0
            else {"status": "rejected", "reason": "replay", "detail": f"seq {s}"}
            for s in seqs
        ]
        accepted = sum(r["status"] == "accepted" for r in results)
        return httpx.Response(
            200,
            json={"results": results, "accepted": accepted, "rejected": len(results) - accepted},
        )

    return handle


def test_send_posts_the_wire_body_and_returns_verdicts_in_order() -> None:
    requests: list[httpx.Request] = []
    readings = [sign_reading(KEY, s, RECORDS) for s in (2, 3)]
    batch, _ = sign_batch(KEY, [sign_reading(KEY, 4, RECORDS).reading])
    with client(echo_server(requests)) as c:
        result = c.send(readings, [batch])
    (request,) = requests
    assert (request.method, str(request.url)) == ("POST", "http://veriot.test/v1/readings")
    assert request.headers["content-type"] == "application/json"
    assert request.content == wire.encode_request(readings, [batch])
    assert result.results == [
        Accepted(id="id2", index=2),
        Rejected(reason="replay", detail="seq 3"),
        Accepted(id="id4", index=4),
    ]
    assert (result.accepted, result.rejected) == (2, 1)


def test_send_reading_returns_its_one_verdict() -> None:
    with client(echo_server([])) as c:
        assert c.send_reading(sign_reading(KEY, 3, RECORDS)) == Rejected("replay", "seq 3")


def test_headers_are_sent() -> None:
    requests: list[httpx.Request] = []
    transport = httpx.MockTransport(echo_server(requests))
    with DeviceClient("http://x", headers={"x-site": "lyon"}, transport=transport) as c:
        c.send([sign_reading(KEY, 2, RECORDS)])
    assert requests[0].headers["x-site"] == "lyon"


@pytest.mark.parametrize(("status", "text"), [(400, "bad seq"), (413, "too large"), (503, "")])
def test_an_error_status_raises_with_status_and_body(status: int, text: str) -> None:
    c = client(lambda r: httpx.Response(status, text=text))
    with c, pytest.raises(DeviceClientError, match=f"answered {status}") as info:
        c.send([sign_reading(KEY, 2, RECORDS)])
    assert (info.value.status, info.value.body) == (status, text)


@pytest.mark.parametrize(
    "answer",
    [
        b"not json",
        b"{}",
        json.dumps({"results": [{"status": "maybe"}], "accepted": 0, "rejected": 0}).encode(),
    ],
)
def test_an_unexpected_answer_raises(answer: bytes) -> None:
    c = client(lambda r: httpx.Response(200, content=answer))
    with c, pytest.raises(DeviceClientError, match="unexpected body"):
        c.send([sign_reading(KEY, 2, RECORDS)])


def test_an_unreachable_server_raises() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with client(refuse) as c, pytest.raises(DeviceClientError, match="connection refused"):
        c.send([sign_reading(KEY, 2, RECORDS)])


def test_too_many_readings_are_refused_before_sending() -> None:
    requests: list[httpx.Request] = []
    signed = sign_reading(KEY, 2, RECORDS)
    with client(echo_server(requests)) as c, pytest.raises(DeviceClientError, match="at most"):
        c.send([signed] * (wire.MAX_READINGS_PER_REQUEST + 1))
    assert requests == []


def test_extra_fields_in_the_answer_are_tolerated() -> None:
    answer = {
        "results": [{"status": "accepted", "id": "a", "index": 0, "leaf_hash": "00"}],
        "accepted": 1,
        "rejected": 0,
        "checkpoint": None,
    }
    with client(lambda r: httpx.Response(200, json=answer)) as c:
        assert c.send_reading(sign_reading(KEY, 2, RECORDS)) == Accepted("a", 0)
