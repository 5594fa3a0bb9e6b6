"""Anchors the log's latest signed checkpoint on chain, one transaction per period.

However many readings a checkpoint covers, anchoring it costs one transaction. When the
chain is unreachable, ingestion is not touched: the anchorer keeps the newest checkpoint as
pending, retries with exponential backoff, and anchors it when the chain returns. Since the
log only grows, that one anchor covers every checkpoint signed during the outage (each is
provably a prefix of it, by a consistency proof), so none is lost; the anchorer logs the
outage and the catch-up.

Anchors are kept in a JSON-lines file (a cache of the contract's events, rebuilt from the
chain when the file is behind it).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from veriot.chain.errors import TransactionRevertedError
from veriot.chain.periodic import Periodic
from veriot.core.errors import ChainError, LedgerError, RootMismatchError
from veriot.core.types import Checkpoint
from veriot.ports import Anchor, ChainClient

log = logging.getLogger(__name__)

DEFAULT_INTERVAL_S = 5.0
MAX_BACKOFF_S = 60.0


class CheckpointSource(Protocol):
    """What the anchorer needs of the log store (a LogStore has it)."""

    def latest_checkpoint(self) -> Checkpoint | None: ...

    def checkpoint_at(self, size: int) -> Checkpoint | None: ...


def anchor_to_json(anchor: Anchor) -> dict[str, Any]:
    return {
        "chain_id": anchor.chain_id,
        "contract": anchor.contract,
        "tx_hash": anchor.tx_hash,
        "block": anchor.block,
        "size": anchor.size,
        "root": anchor.root.hex(),
        "timestamp": anchor.timestamp,
        "log_id": anchor.log_id,
    }


def anchor_from_json(data: dict[str, Any]) -> Anchor:
    return Anchor(
        int(data["chain_id"]),
        str(data["contract"]),
        str(data["tx_hash"]),
        int(data["block"]),
        int(data["size"]),
        bytes.fromhex(data["root"]),
        float(data["timestamp"]),
        str(data.get("log_id", "")),
    )


class Anchorer:
    """Anchors `source.latest_checkpoint()` every `interval_s` when its size grew.

    `path` is the JSON-lines file of anchors (None keeps them in memory only). Run it with
    `start()`/`stop()` as a background thread, or call `step()` yourself.
    """

    def __init__(
        self,
        chain: ChainClient,
        source: CheckpointSource,
        *,
        interval_s: float = DEFAULT_INTERVAL_S,
        path: Path | None = None,
        max_backoff_s: float = MAX_BACKOFF_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if interval_s <= 0:
            raise ValueError(f"anchor interval must be positive; got {interval_s}")
        self._chain = chain
        self._source = source
        self._interval_s = interval_s
        self._path = path
        self._max_backoff_s = max_backoff_s
        self._clock = clock
        self._lock = threading.Lock()
        self._anchors: list[Anchor] = self._load()
        self._failures = 0
        self._retry_at = 0.0
        self._outage_since_size: int | None = None
        self.last_error: str | None = None
        self._loop = Periodic("anchorer", self._tick, interval_s)
        self._synced = False

    # --- reading ----------------------------------------------------------------------

    def list_anchors(self) -> list[Anchor]:
        """Anchors made so far, oldest first."""
        with self._lock:
            return list(self._anchors)

    def latest(self) -> Anchor | None:
        with self._lock:
            return self._anchors[-1] if self._anchors else None

    def anchor_for(self, size: int) -> Anchor | None:
        """The oldest anchor whose size is at least `size` (what a proof of a reading at
        index < size should go through), or None when none is that large yet."""
        with self._lock:
            return next((a for a in self._anchors if a.size >= size), None)

    def status(self) -> dict[str, Any]:
        latest = self.latest()
        cp = self._source.latest_checkpoint()
        return {
            "anchored_size": latest.size if latest else 0,
            "checkpoint_size": cp.size if cp else 0,
            "pending": bool(cp and (latest is None or cp.size > latest.size)),
            "failures": self._failures,
            "last_error": self.last_error,
        }

    # --- anchoring --------------------------------------------------------------------

    def anchor_once(self) -> Anchor | None:
        """Anchors the latest checkpoint when it is larger than the last anchor; returns the
        new anchor, or None when there was nothing new. Raises ChainError."""
        if not self._synced:
            self._sync_from_chain()
        checkpoint = self._source.latest_checkpoint()
        latest = self.latest()
        if checkpoint is None or (latest is not None and checkpoint.size <= latest.size):
            return None
        try:
            anchor = self._chain.anchor(
                checkpoint.log_id, checkpoint.size, checkpoint.root, checkpoint.timestamp
            )
        except TransactionRevertedError:
            # An anchor sent before a crash or lost receipt may have been mined after all.
            self._sync_from_chain()
            latest = self.latest()
            if latest is not None and latest.size >= checkpoint.size:
                return None
            raise
        self._record(anchor)
        return anchor

    def step(self) -> Anchor | None:
        """One period: anchors unless backing off after a failure. Never raises ChainError;
        failures are logged and counted, and the checkpoint stays pending."""
        now = self._clock()
        if now < self._retry_at:
            return None
        try:
            anchor = self.anchor_once()
        except (ChainError, LedgerError) as exc:
            self._failures += 1
            delay = min(self._max_backoff_s, self._interval_s * 2 ** min(self._failures - 1, 16))
            self._retry_at = now + delay
            latest = self.latest()
            if self._outage_since_size is None:
                self._outage_since_size = latest.size if latest else 0
            cp = self._source.latest_checkpoint()
            log.warning(
                "anchoring failed (%d in a row; checkpoint size %s pending, retry in %.1fs): %s",
                self._failures,
                cp.size if cp else 0,
                delay,
                exc,
            )
            self.last_error = str(exc)
            return None
        if self._failures:
            log.info(
                "anchoring resumed after %d failures: anchored size %s, covering every "
                "checkpoint since size %s",
                self._failures,
                anchor.size if anchor else "?",
                self._outage_since_size,
            )
        self._failures, self._retry_at, self.last_error = 0, 0.0, None
        self._outage_since_size = None
        return anchor

    def _tick(self) -> None:
        try:
            self.step()
        except Exception:  # a store fault must not end anchoring for good
            log.exception("anchoring step failed; trying again next period")

    def start(self) -> None:
        """Steps every interval on a background thread until `stop()`."""
        self._loop.start()

    def stop(self) -> None:
        self._loop.stop()

    # --- the anchors file -------------------------------------------------------------

    def _sync_from_chain(self) -> None:
        """Makes the local list the chain's (the chain is the truth: a list from another
        chain or contract, or one behind the chain, is replaced). Raises RootMismatchError
        when the chain holds, for some size, a root other than the log's checkpoint."""
        checkpoint = self._source.latest_checkpoint()
        if checkpoint is None:
            return
        on_chain = self._chain.latest_anchor(checkpoint.log_id)
        latest = self.latest()
        up_to_date = (on_chain is None and latest is None) or (
            on_chain is not None
            and latest is not None
            and (on_chain.contract.lower(), on_chain.size, on_chain.root)
            == (latest.contract.lower(), latest.size, latest.root)
        )
        if not up_to_date:
            anchors = self._chain.list_anchors(checkpoint.log_id) if on_chain else []
            for anchor in anchors:
                mine = self._source.checkpoint_at(anchor.size)
                if mine is not None and mine.root != anchor.root:
                    raise RootMismatchError(expected=anchor.root, calculated=mine.root)
            log.info(
                "anchors: took %d anchors from the chain (had %d locally)",
                len(anchors),
                len(self._anchors),
            )
            with self._lock:
                self._anchors = anchors
            self._rewrite()
        self._synced = True

    def _rewrite(self) -> None:
        if self._path is None:
            return
        self._path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._path.with_suffix(".tmp")
        with open(tmp, "w") as fh:
            for anchor in self.list_anchors():
                fh.write(json.dumps(anchor_to_json(anchor)) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self._path)

    def _record(self, anchor: Anchor) -> None:
        with self._lock:
            self._anchors.append(anchor)
        log.info("anchored size %d in block %d (tx %s)", anchor.size, anchor.block, anchor.tx_hash)
        if self._path is None:
            return
        self._path.parent.mkdir(parents=True, exist_ok=True)
        with open(self._path, "a") as fh:
            fh.write(json.dumps(anchor_to_json(anchor)) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def _load(self) -> list[Anchor]:
        if self._path is None or not self._path.exists():
            return []
        anchors = []
        for line in self._path.read_text().splitlines():
            try:
                anchors.append(anchor_from_json(json.loads(line)))
            except (ValueError, KeyError, TypeError):
                log.warning("%s: skipping a torn line", self._path)
        anchors.sort(key=lambda a: a.size)
        return anchors
