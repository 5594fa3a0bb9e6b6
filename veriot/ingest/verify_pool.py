"""Signature verification on worker processes, for the service's ingest path.

Ed25519 verification runs in C without the GIL, but on threads each verification still
has to take the GIL back, and on a busy service (decoding, sequencing, scoring all hold
it) that wait costs more than the verification. A request's own-signature checks are
therefore shipped, as (public key, message, signature) bytes, to worker processes that
do nothing else; the answer is one bool per check.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor

from veriot.identity.signatures import SignatureCheck, verify_signatures

MIN_SHIPPED = 8
"""Fewer checks than this are verified on the calling thread: shipping costs more."""


class ProcessVerifier:
    """A VerifyMany that verifies on `processes` worker processes (spawned, not forked:
    the service has threads running). Thread-safe; call `close` when done."""

    def __init__(self, processes: int) -> None:
        if processes < 1:
            raise ValueError(f"want at least one verification process; got {processes}")
        self.processes = processes
        self._pool = ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn"))
        # Start the workers now, so the first request does not wait for them.
        for future in [self._pool.submit(verify_signatures, []) for _ in range(processes)]:
            future.result()

    def __call__(self, checks: Sequence[SignatureCheck]) -> list[bool]:
        if len(checks) < MIN_SHIPPED:
            return verify_signatures(checks)
        return self._pool.submit(verify_signatures, list(checks)).result()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
