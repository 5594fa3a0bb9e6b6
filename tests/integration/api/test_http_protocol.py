"""The service's HTTP protocol sends each response's head and body in one write, and
delivers everything else as uvicorn's own protocol does: streamed bodies, keep-alive,
closing."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any, cast

import httpx
import pytest
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from tests.conftest import free_port, run_server
from veriot.api.http import CoalescingTransport, HttpProtocol, serve_config


class FakeTransport(asyncio.Transport):
    """Records what is written to it."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False
        self.aborted = False

    def write(self, data: Any) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = self.closed = True

    def get_write_buffer_size(self) -> int:
        return 0


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def one_turn(loop: asyncio.AbstractEventLoop) -> None:
    loop.run_until_complete(asyncio.sleep(0))


def test_the_writes_of_one_loop_turn_leave_in_one_write(loop: asyncio.AbstractEventLoop) -> None:
    inner = FakeTransport()
    transport = CoalescingTransport(inner, loop)
    transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
    transport.write(b"")
    transport.writelines([b"{", bytearray(b'"ok"'), memoryview(b"}")])
    assert inner.writes == []
    assert transport.get_write_buffer_size() == 25
    one_turn(loop)
    assert inner.writes == [b'HTTP/1.1 200 OK\r\n\r\n{"ok"}']
    transport.write(b"next")
    one_turn(loop)
    assert inner.writes[1:] == [b"next"]


def test_closing_sends_what_is_pending_first(loop: asyncio.AbstractEventLoop) -> None:
    inner = FakeTransport()
    transport = CoalescingTransport(inner, loop)
    transport.write(b"last words")
    transport.close()
    assert inner.writes == [b"last words"] and inner.closed
    one_turn(loop)  # the scheduled flush finds nothing left
    assert inner.writes == [b"last words"]


def test_an_abort_drops_what_is_pending(loop: asyncio.AbstractEventLoop) -> None:
    inner = FakeTransport()
    transport = CoalescingTransport(inner, loop)
    transport.write(b"never sent")
    transport.abort()
    one_turn(loop)
    assert inner.writes == [] and inner.aborted


def test_nothing_is_written_once_the_connection_is_closing(
    loop: asyncio.AbstractEventLoop,
) -> None:
    inner = FakeTransport()
    transport = CoalescingTransport(inner, loop)
    transport.write(b"too late")
    inner.closed = True  # the peer went away within the turn
    one_turn(loop)
    assert inner.writes == [] and transport.is_closing()


class Recorder:
    """Wraps the socket's transport and records each write that reaches it."""

    def __init__(self, transport: asyncio.Transport, writes: list[bytes]) -> None:
        self._transport = transport
        self._writes = writes

    def write(self, data: bytes) -> None:
        self._writes.append(bytes(data))
        self._transport.write(data)

    def writelines(self, pieces: list[bytes]) -> None:
        self._writes.append(b"".join(pieces))
        self._transport.writelines(pieces)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


WRITES: list[bytes] = []


class RecordedHttpProtocol(HttpProtocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(cast(asyncio.Transport, Recorder(transport, WRITES)))


class RecordedPlainProtocol(HttpToolsProtocol):
    """uvicorn's own protocol, recorded the same way: the comparison."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(cast(asyncio.Transport, Recorder(transport, WRITES)))


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answers /stream with a body in three pieces sent apart, anything else at once."""
    if scope["type"] != "http":
        return
    if scope["path"] == "/stream":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for piece in (b"a", b"b"):
            await send({"type": "http.response.body", "body": piece, "more_body": True})
            await asyncio.sleep(0.01)
        await send({"type": "http.response.body", "body": b"c"})
        return
    body = b'{"path": "' + scope["path"].encode() + b'"}'
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def serve(protocol: type[asyncio.Protocol]) -> tuple[uvicorn.Server, threading.Thread, str]:
    port = free_port()
    server, thread = run_server(serve_config(app, "127.0.0.1", port, http=protocol))
    return server, thread, f"http://127.0.0.1:{port}"


@pytest.fixture
def recorded() -> Iterator[None]:
    WRITES.clear()
    yield
    WRITES.clear()


@pytest.mark.parametrize(
    ("protocol", "writes_per_answer"), [(RecordedHttpProtocol, 1), (RecordedPlainProtocol, 2)]
)
def test_each_answer_leaves_the_service_in_one_write(
    recorded: None, protocol: type[asyncio.Protocol], writes_per_answer: int
) -> None:
    server, thread, url = serve(protocol)
    try:
        with httpx.Client(base_url=url) as client:  # one keep-alive connection
            for path in ("/a", "/b", "/c"):
                answer = client.get(path)
                assert answer.status_code == 200
                assert answer.json() == {"path": path}
    finally:
        server.should_exit = True
        thread.join(30)
    assert len(WRITES) == 3 * writes_per_answer
    if writes_per_answer == 1:
        for write, path in zip(WRITES, ("/a", "/b", "/c"), strict=True):
            assert write.startswith(b"HTTP/1.1 200 OK\r\n")
            assert write.endswith(b'\r\n\r\n{"path": "' + path.encode() + b'"}')


def test_a_streamed_body_arrives_whole_and_in_order(recorded: None) -> None:
    server, thread, url = serve(RecordedHttpProtocol)
    try:
        with httpx.Client(base_url=url) as client:
            with client.stream("GET", "/stream") as answer:
                assert answer.headers["transfer-encoding"] == "chunked"
                assert answer.read() == b"abc"
            assert client.get("/after").json() == {"path": "/after"}  # the connection lives on
    finally:
        server.should_exit = True
        thread.join(30)
    # the head leaves with the first piece; each later piece when it is sent
    assert len(WRITES) == 4
    assert WRITES[0].startswith(b"HTTP/1.1 200 OK\r\n") and WRITES[0].endswith(b"1\r\na\r\n")
