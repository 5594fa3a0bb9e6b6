"""The anchorer: one transaction per period whatever the readings, nothing when nothing
changed, retries with backoff when the chain fails, and a catch-up that covers every
checkpoint signed meanwhile."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.integration.chain.logkit import MiniLog, SimDevice
from veriot.chain.anchorer import Anchorer
from veriot.chain.embedded import EmbeddedChain
from veriot.chain.errors import ChainUnavailableError
from veriot.core.errors import RootMismatchError
from veriot.ports import Anchor


class FlakyChain:
    """Wraps a chain; while `down`, every anchoring call fails as an unreachable node does."""

    def __init__(self, chain: EmbeddedChain) -> None:
        self.chain, self.down, self.sent = chain, False, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.chain, name)

    def anchor(self, log_id: str, size: int, root: bytes, timestamp: float) -> Anchor:
        if self.down:
            raise ChainUnavailableError("http://node", "connection refused")
        self.sent += 1
        return self.chain.anchor(log_id, size, root, timestamp)

    def latest_anchor(self, log_id: str) -> Anchor | None:
        if self.down:
            raise ChainUnavailableError("http://node", "connection refused")
        return self.chain.latest_anchor(log_id)


@pytest.fixture
def chain(tmp_path: Path) -> FlakyChain:
    return FlakyChain(EmbeddedChain(tmp_path / "chain"))


def _grow(log: MiniLog, n: int) -> None:
    device = SimDevice(b"\x03" * 32)
    start = log.tree.size
    for seq in range(start, start + n):
        log.add(device, seq, 1e9 + seq)
    log.checkpoint(1e9 + start + n)


def test_one_transaction_per_period_whatever_the_readings(chain: FlakyChain) -> None:
    log = MiniLog()
    anchorer = Anchorer(chain, log, interval_s=5)
    assert anchorer.step() is None  # no checkpoint yet
    _grow(log, 500)
    anchor = anchorer.step()
    assert anchor is not None and anchor.size == 500 and chain.sent == 1
    assert anchorer.step() is None and chain.sent == 1  # nothing new: no transaction
    _grow(log, 3)
    assert anchorer.step() is not None and chain.sent == 2
    assert [a.size for a in anchorer.list_anchors()] == [500, 503]
    assert anchorer.anchor_for(501) == anchorer.latest()


def test_outage_backs_off_then_catches_up(chain: FlakyChain) -> None:
    log, now = MiniLog(), [0.0]
    anchorer = Anchorer(chain, log, interval_s=5, max_backoff_s=60, clock=lambda: now[0])
    _grow(log, 2)
    anchorer.step()
    chain.down = True
    _grow(log, 2)
    assert anchorer.step() is None and anchorer.status()["failures"] == 1
    _grow(log, 2)
    now[0] += 1  # within the backoff: no attempt at all
    assert anchorer.step() is None and anchorer.status()["failures"] == 1
    now[0] += 5
    assert anchorer.step() is None and anchorer.status()["failures"] == 2
    assert anchorer.status() | {"last_error": None} == {
        "anchored_size": 2,
        "checkpoint_size": 6,
        "pending": True,
        "failures": 2,
        "last_error": None,
    }
    chain.down = False
    now[0] += 10
    anchor = anchorer.step()
    assert anchor is not None and anchor.size == 6  # covers the checkpoints at 4 and 6
    assert anchorer.status()["failures"] == 0 and not anchorer.status()["pending"]


def test_anchors_survive_a_restart_in_the_file(chain: FlakyChain, tmp_path: Path) -> None:
    log, path = MiniLog(), tmp_path / "anchors.jsonl"
    first = Anchorer(chain, log, path=path)
    _grow(log, 4)
    first.step()
    _grow(log, 4)
    first.step()
    again = Anchorer(chain, log, path=path)
    assert again.list_anchors() == first.list_anchors()
    assert again.step() is None and chain.sent == 2


def test_a_lost_file_is_rebuilt_from_the_chain(chain: FlakyChain, tmp_path: Path) -> None:
    log = MiniLog()
    _grow(log, 4)
    made = Anchorer(chain, log, path=tmp_path / "a.jsonl").step()
    fresh = Anchorer(chain, log, path=tmp_path / "b.jsonl")
    assert fresh.step() is None and fresh.list_anchors() == [made]
    assert (tmp_path / "b.jsonl").read_text().count("\n") == 1


def test_an_anchor_already_mined_is_not_sent_twice(chain: FlakyChain) -> None:
    """A receipt lost after the transaction was mined: the retry finds it on chain."""
    log = MiniLog()
    _grow(log, 4)
    cp = log.latest_checkpoint()
    assert cp is not None
    chain.chain.anchor(cp.log_id, cp.size, cp.root, cp.timestamp)
    anchorer = Anchorer(chain, log)
    assert anchorer.step() is None and chain.sent == 0
    assert [a.size for a in anchorer.list_anchors()] == [4]


def test_a_chain_anchor_that_contradicts_the_log_is_reported(chain: FlakyChain) -> None:
    log = MiniLog()
    _grow(log, 4)
    cp = log.latest_checkpoint()
    assert cp is not None
    chain.chain.anchor(cp.log_id, cp.size, b"\x66" * 32, cp.timestamp)
    anchorer = Anchorer(chain, log)
    with pytest.raises(RootMismatchError):
        anchorer.anchor_once()
    assert anchorer.step() is None and "root mismatch" in (anchorer.last_error or "")


def test_background_thread_anchors(chain: FlakyChain) -> None:
    log = MiniLog()
    _grow(log, 3)
    anchorer = Anchorer(chain, log, interval_s=0.01)
    anchorer.start()
    try:
        for _ in range(500):
            if anchorer.latest() is not None:
                break
            import time

            time.sleep(0.01)
    finally:
        anchorer.stop()
    assert anchorer.latest() is not None and anchorer.latest().size == 3  # type: ignore[union-attr]
