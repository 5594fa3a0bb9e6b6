"""Shared fixtures: a node on a temporary data directory and a live HTTP service."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn

IN_CI = bool(os.environ.get("CI"))


def service_missing(what: str) -> None:
    """A test whose service is missing fails under CI and skips elsewhere."""
    if IN_CI:
        pytest.fail(f"{what} is not available (CI is set, so this fails rather than skips)")
    pytest.skip(f"{what} is not available")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveService:
    url: str
    node: object
    api_key: str
    data_dir: Path

    def client(self, operator: bool = False) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.api_key}"} if operator else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)


def start_service(
    data_dir: Path, **settings: object
) -> tuple[LiveService, uvicorn.Server, threading.Thread]:
    from veriot.api.app import create_app
    from veriot.api.http import serve_config
    from veriot.bootstrap import open_node
    from veriot.config import Settings

    port = free_port()
    node = open_node(Settings(data_dir=data_dir, port=port, **settings))  # type: ignore[arg-type]
    api_key = node.create_api_key("tests")
    server, thread = run_server(serve_config(create_app(node), "127.0.0.1", port))
    return LiveService(f"http://127.0.0.1:{port}", node, api_key, data_dir), server, thread


def run_server(config: uvicorn.Config) -> tuple[uvicorn.Server, threading.Thread]:
    """A uvicorn server of `config` (a uvicorn.Config) running in a thread, once it has
    started: (server, thread). Stop it with `server.should_exit = True`."""
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
        time.sleep(0.02)
    return server, thread


@pytest.fixture
def service(tmp_path: Path) -> Iterator[LiveService]:
    """A real veriot HTTP service (uvicorn on a free loopback port) on SQLite in tmp_path."""
    live, server, thread = start_service(tmp_path / "data", max_body_bytes=256 * 1024)
    yield live
    server.should_exit = True
    thread.join(timeout=30)
