"""Chains for the integration tests: the embedded chain in a temporary directory, and a real
anvil node (from the npm package @foundry-rs/anvil) on a free loopback port."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port, service_missing

ROOT = Path(__file__).resolve().parents[3]
ANVIL_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
"""Private key of anvil's first prefunded development account (public knowledge)."""
ANVIL_CHAIN_ID = 31337


def anvil_binary() -> str | None:
    local = ROOT / "node_modules" / ".bin" / "anvil"
    if local.exists():
        return str(local)
    return shutil.which("anvil")


@dataclass
class Anvil:
    binary: str
    port: int
    state: Path | None = None
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        args = [
            self.binary,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--silent",
            "--chain-id",
            str(ANVIL_CHAIN_ID),
        ]
        if self.state is not None:
            args += ["--state", str(self.state)]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.post(
                    self.url,
                    json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []},
                    timeout=1,
                ).raise_for_status()
                return
            except httpx.HTTPError:
                if self.process.poll() is not None:
                    break
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"anvil did not start on port {self.port}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            # SIGTERM lets anvil write its --state file
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


def start_anvil(state: Path | None = None) -> Anvil:
    binary = anvil_binary()
    if binary is None:
        service_missing("anvil (npm install @foundry-rs/anvil, or .ci/anvil.sh)")
        raise AssertionError("unreachable")
    node = Anvil(binary, free_port(), state)
    node.start()
    return node


@pytest.fixture(scope="module")
def anvil() -> Iterator[Anvil]:
    node = start_anvil()
    yield node
    node.stop()


@pytest.fixture
def anvil_key(tmp_path: Path) -> Path:
    path = tmp_path / "operator.key"
    path.write_text(ANVIL_KEY + "\n")
    os.chmod(path, 0o600)
    return path
