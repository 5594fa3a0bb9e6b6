"""`veriot chain info|serve|deploy` as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port
from tests.integration.chain.conftest import Anvil
from veriot.chain.embedded import EmbeddedChain
from veriot.cli.main import main

LOG = "ef" * 32


def test_info_on_the_embedded_chain(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    chain = EmbeddedChain(tmp_path / "chain")
    anchor = chain.anchor(LOG, 9, b"\x01" * 32, 5.0)
    assert main(["chain", "info", "--data", str(tmp_path), "--log-id", LOG]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["chain_id"] == chain.chain_id() and out["log_anchor"] == chain.anchor_address
    assert out["latest_anchor"]["tx_hash"] == anchor.tx_hash and out["latest_anchor"]["size"] == 9


@pytest.mark.anvil
def test_deploy_then_info_on_a_node(
    anvil: Anvil, anvil_key: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--data", str(tmp_path), "--chain", anvil.url]
    assert main(["chain", "deploy", *args, "--chain-key", str(anvil_key)]) == 0
    deployed = json.loads(capsys.readouterr().out)
    assert main(["chain", "info", *args]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["chain_id"], info["log_anchor"]) == (31337, deployed["log_anchor"])


def test_deploy_with_a_bad_key_fails_clearly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = tmp_path / "k"
    key.write_text("nope")
    code = main(
        [
            "chain",
            "deploy",
            "--data",
            str(tmp_path),
            "--chain",
            "http://127.0.0.1:1",
            "--chain-key",
            str(key),
        ]
    )
    assert code == 1 and "does not hold a 32-byte hex private key" in capsys.readouterr().err


def test_serve_exposes_the_embedded_chain_read_only(tmp_path: Path) -> None:
    chain = EmbeddedChain(tmp_path / "chain")
    chain.anchor(LOG, 1, b"\x01" * 32, 5.0)
    port = free_port()
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "veriot.cli.main",
            "chain",
            "serve",
            "--data",
            str(tmp_path),
            "--port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        assert proc.stdout is not None
        banner = json.loads(proc.stdout.readline())
        assert banner["url"] == f"http://127.0.0.1:{port}"

        def rpc(method: str, params: list[object]) -> dict[str, object]:
            body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
            return dict(httpx.post(banner["url"], json=body, timeout=10).json())

        assert int(str(rpc("eth_chainId", [])["result"]), 16) == chain.chain_id()
        assert int(str(rpc("eth_blockNumber", [])["result"]), 16) == chain.block_number()
        refused = rpc("eth_sendRawTransaction", ["0x00"])
        assert "read-only" in str(refused["error"])
        chain.anchor(LOG, 2, b"\x02" * 32, 6.0)  # written by another process: served too
        deadline = time.monotonic() + 10
        while int(str(rpc("eth_blockNumber", [])["result"]), 16) != chain.block_number():
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()


def test_serve_without_a_chain_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["chain", "serve", "--data", str(tmp_path)]) == 2
    assert "no embedded chain" in capsys.readouterr().err
