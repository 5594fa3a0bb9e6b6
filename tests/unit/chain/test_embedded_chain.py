"""The embedded chain's journal: state survives restarts, identical block for block; a torn
last line is dropped; two processes' writes interleave safely."""

from __future__ import annotations

from pathlib import Path

from veriot.chain import artifacts
from veriot.chain.embedded import JOURNAL, EmbeddedChain

LOG = "cd" * 32


def _blocks(chain: EmbeddedChain) -> list[bytes]:
    return [bytes(chain.web3.eth.get_block(n)["hash"]) for n in range(chain.block_number() + 1)]


def test_restart_rebuilds_identical_state(tmp_path: Path) -> None:
    chain = EmbeddedChain(tmp_path)
    chain.register_device("did:key:a", b"\x01" * 32, "t", b"\0" * 32)
    anchor = chain.anchor(LOG, 7, b"\x02" * 32, 123.0)
    before = _blocks(chain)
    again = EmbeddedChain(tmp_path)
    assert _blocks(again) == before
    assert again.latest_anchor(LOG) == anchor
    assert again.get_device("did:key:a") == chain.get_device("did:key:a")
    assert (again.registry_address, again.anchor_address) == (
        chain.registry_address,
        chain.anchor_address,
    )


def test_a_torn_last_line_is_dropped(tmp_path: Path) -> None:
    chain = EmbeddedChain(tmp_path)
    chain.anchor(LOG, 1, b"\x02" * 32, 1.0)
    with open(tmp_path / JOURNAL, "ab") as fh:
        fh.write(b'{"t": 99, "tx": "f8')  # a crash mid-write
    again = EmbeddedChain(tmp_path)
    assert again.latest_anchor(LOG) is not None
    again.anchor(LOG, 2, b"\x03" * 32, 2.0)  # the writer cuts the torn line first
    assert EmbeddedChain(tmp_path).latest_anchor(LOG).size == 2  # type: ignore[union-attr]


def test_two_writers_on_one_directory(tmp_path: Path) -> None:
    one, two = EmbeddedChain(tmp_path), EmbeddedChain(tmp_path)
    one.anchor(LOG, 1, b"\x02" * 32, 1.0)
    two.anchor(LOG, 2, b"\x03" * 32, 2.0)  # catches up with one's write, nonce included
    one.anchor(LOG, 3, b"\x04" * 32, 3.0)
    assert [a.size for a in EmbeddedChain(tmp_path).list_anchors(LOG)] == [1, 2, 3]
    assert _blocks(one) == _blocks(two)


def test_block_times_follow_the_clock_and_always_step(tmp_path: Path) -> None:
    chain = EmbeddedChain(tmp_path, clock=lambda: 1_800_000_000.7)
    a = chain.anchor(LOG, 1, b"\x02" * 32, 1.0)
    b = chain.anchor(LOG, 2, b"\x02" * 32, 1.0)
    stamps = [chain.web3.eth.get_block(x.block)["timestamp"] for x in (a, b)]
    assert stamps[0] >= 1_800_000_000 and stamps[1] == stamps[0] + 1


def test_artifacts_are_cached_by_source_and_version(tmp_path: Path) -> None:
    artifacts._memo.clear()
    first = artifacts.load(artifacts.LOG_ANCHOR, tmp_path)
    assert len(list(tmp_path.glob("LogAnchor-*.json"))) == 1
    artifacts._memo.clear()
    again = artifacts.load(artifacts.LOG_ANCHOR, tmp_path)
    assert again == first and again.abi == first.abi and len(again.bytecode) > 100
