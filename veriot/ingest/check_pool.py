"""Ingest's CPU-bound half on worker processes: decode and check whole request bodies.

The service process keeps what must live in one place: the sequencer, the store writes
and the alert detectors. Decoding a body and checking its readings (canonical encodings,
hashes, device, clock skew, signatures) needs no shared state but the device registry,
and in one process it would hold the GIL that the sequencer, the HTTP server and the
detectors need. So a body goes, as bytes, to a worker process (one per core by default),
which answers with its CheckResult, encoded with msgpack: building the values again in
the service costs a fraction of checking them.

Each worker has its own DeviceCache over its own connection to the store. The service
sends it every device change on the same pipe as the bodies, so a registration or a
revocation is in force for every body sent after it. Workers also verify plain lists of
signatures (the pool is a VerifyMany), for the front doors that check in the service
process (MQTT).

A worker that dies fails its requests in flight with CheckPoolError; the caller checks
those bodies in its own process, and later bodies go to the workers still alive.
"""

from __future__ import annotations

import itertools
import logging
import multiprocessing
import struct
import threading
from collections.abc import Sequence
from concurrent.futures import Future, InvalidStateError
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import msgspec

from veriot.core.canonical import HASH_BYTES, SIGNATURE_BYTES, device_prefix
from veriot.core.columns import FixedRuns, HexIds, MessageRuns
from veriot.core.errors import DecodeError, VeriotError
from veriot.core.packed import PackedReadings, pack
from veriot.core.types import BatchAuth, BatchSeal, Device, Reading, SecurityEvent
from veriot.core.wire import decode_request
from veriot.identity.signatures import SignatureCheck, verify_signatures
from veriot.ingest.service import lower_helper_priority, tune_gc_for_service
from veriot.ingest.verdict import Verdict
from veriot.ingest.verify import Checked, CheckedRun, CheckResult, Verifier

log = logging.getLogger(__name__)

MIN_SHIPPED = 8
"""Fewer signature checks than this are verified on the calling thread: shipping costs more."""

START_TIMEOUT_S = 60.0

# Messages to a worker: a tag byte, then
#   b"B" u64(request) f64(now) body      check a request body at receiver time `now`
#   b"V" u64(request) msgpack(checks)    verify (public key, message, signature) triples
#   b"D" msgpack(Device)                 a device was registered or changed
#   b"F"                                 reload every device from the store
# Answers: b"R" u64(request) msgpack(_Answer) | b"S" u64(request) msgpack(list[bool])
#        | b"E" u64(request) DecodeError text | b"X" u64(request) unexpected error text
#   and, once at start, b"ready" or b"fatal:" reason.
_ID = struct.Struct(">Q")
_NOW = struct.Struct(">d")


class CheckPoolError(VeriotError):
    """A worker process could not answer (it died or failed unexpectedly)."""


class _CheckedWire(msgspec.Struct, array_like=True, gc=False):
    """A Checked as it crosses the pipe: a sealed member names its seal by position in
    `_Answer.seals`, so a batch's leaves cross once, not once per member."""

    reading: Reading
    id: str
    leaf_hash: bytes
    message: bytes
    signature: bytes | None
    batch: BatchAuth | None
    seal: int
    position: int


class _RunWire(msgspec.Struct, array_like=True, gc=False):
    """A CheckedRun as it crosses the pipe: its columns, the per-reading bytes as blobs
    (veriot.core.columns: 32-byte id digests, 32-byte leaf hashes, the messages' tails
    after their device prefix with their lengths, 64-byte signatures), the readings
    packed (the service hands them on to the alert process without decoding them, see
    veriot.core.packed)."""

    device: str
    readings: msgspec.Raw
    ids: bytes
    leaf_hashes: bytes
    tail_lengths: bytes
    tails: bytes
    seqs: tuple[int, ...]
    times: tuple[float, ...]
    names: tuple[str, ...]
    signatures: bytes
    batch_auths: tuple[BatchAuth, ...]
    seal: BatchSeal | None
    positions: tuple[int, ...]


class _Answer(msgspec.Struct, array_like=True, gc=False):
    """A CheckResult: each item is a checked reading, or the position of its verdict; or,
    when every item is one CheckedRun (the common case), `run` and no items."""

    items: list[_CheckedWire | int]
    verdicts: list[Verdict]
    events: list[SecurityEvent]
    seals: list[BatchSeal]
    run: _RunWire | None = None


_encoder = msgspec.msgpack.Encoder()
_answer_decoder = msgspec.msgpack.Decoder(_Answer)
_bools_decoder = msgspec.msgpack.Decoder(list[bool])
_checks_decoder = msgspec.msgpack.Decoder(list[tuple[bytes, bytes, bytes]])
_device_decoder = msgspec.msgpack.Decoder(Device)


def encode_result(result: CheckResult) -> bytes:
    """The msgpack form of a CheckResult (see decode_result)."""
    run = CheckedRun.of(result.items)
    wire = _run_wire(run) if run is not None else None
    if wire is not None:
        return _encoder.encode(_Answer([], [], result.events, [], wire))
    seals: dict[int, int] = {}
    seal_list: list[BatchSeal] = []
    verdicts: list[Verdict] = []
    items: list[_CheckedWire | int] = []
    for item in result.items:
        if isinstance(item, Verdict):
            items.append(len(verdicts))
            verdicts.append(item)
            continue
        ref = -1
        if item.seal is not None:
            found = seals.get(id(item.seal))
            if found is None:
                found = seals[id(item.seal)] = len(seal_list)
                seal_list.append(item.seal)
            ref = found
        items.append(
            _CheckedWire(
                item.reading,
                item.id,
                item.leaf_hash,
                item.message,
                item.signature,
                item.batch,
                ref,
                item.position,
            )
        )
    return _encoder.encode(_Answer(items, verdicts, result.events, seal_list))


def _run_wire(run: CheckedRun) -> _RunWire | None:
    """The run as blobs; None when its bytes do not fit them (an id that is not a reading
    id, a leaf hash that is not 32 bytes, a message without its device's prefix, a
    signature that is not 64 bytes: never so for a run that passed the checks, and then
    it crosses item by item)."""
    try:
        messages = MessageRuns.of(device_prefix(run.device), run.messages)
        return _RunWire(
            run.device,
            pack(run.readings),
            HexIds.of(run.ids).digests.blob,
            FixedRuns.of(run.leaf_hashes, HASH_BYTES).blob,
            messages.lengths,
            messages.tails,
            tuple(run.seqs),
            tuple(run.times),
            tuple(run.names),
            FixedRuns.of(run.signatures, SIGNATURE_BYTES).blob if run.signatures else b"",
            tuple(run.batch_auths),
            run.seal,
            tuple(run.positions),
        )
    except ValueError:
        return None


def decode_result(data: bytes) -> CheckResult:
    """Inverse of encode_result. Raises msgspec.DecodeError for anything else."""
    answer = _answer_decoder.decode(data)
    w = answer.run
    if w is not None:
        try:
            readings = PackedReadings((w.readings,))
            ids = HexIds(FixedRuns(w.ids, HASH_BYTES))
            leaf_hashes = FixedRuns(w.leaf_hashes, HASH_BYTES)
            messages = MessageRuns(device_prefix(w.device), w.tail_lengths, w.tails)
            signatures = FixedRuns(w.signatures, SIGNATURE_BYTES) if w.signatures else ()
        except ValueError as exc:
            raise msgspec.DecodeError(f"a run's columns: {exc}") from exc
        n = len(ids)
        counts = {
            "readings": len(readings),
            "leaf hashes": len(leaf_hashes),
            "messages": len(messages),
            "seqs": len(w.seqs),
            "times": len(w.times),
            "signatures": len(signatures) or n,
        }
        for name, count in counts.items():
            if count != n:
                raise msgspec.DecodeError(f"a run of {n} ids has {count} {name}")
        run = CheckedRun(
            w.device,
            readings,
            ids,
            leaf_hashes,
            messages,
            w.seqs,
            w.times,
            w.names,
            signatures,
            w.batch_auths,
            w.seal,
            w.positions,
        )
        return CheckResult(items=run, events=answer.events)
    seals, verdicts = answer.seals, answer.verdicts
    items: list[Checked | Verdict] = [
        verdicts[w]
        if isinstance(w, int)
        else Checked(
            w.reading,
            w.id,
            w.leaf_hash,
            w.message,
            w.signature,
            w.batch,
            seals[w.seal] if w.seal >= 0 else None,
            w.position,
        )
        for w in answer.items
    ]
    return CheckResult(items=items, events=answer.events)


# --- the worker process ------------------------------------------------------------------


def _serve(conn: Connection, db: str | None, data_dir: str, max_skew_s: float) -> None:
    """A worker's main loop: answers each message in order until the pipe closes."""
    # Imported here: the worker is spawned, and only it needs a store of its own.
    from veriot.ingest.devices import DeviceCache
    from veriot.storage import open_store

    try:
        store = open_store(db, Path(data_dir))
        devices = DeviceCache(store)
    except Exception as exc:  # the service reports it and does not start
        conn.send_bytes(b"fatal:" + f"{type(exc).__name__}: {exc}".encode())
        return
    verifier = Verifier(devices.get, max_skew_s)
    tune_gc_for_service()
    lower_helper_priority()
    conn.send_bytes(b"ready")
    try:
        while True:
            try:
                message = conn.recv_bytes()
            except EOFError:
                return
            tag = message[:1]
            if tag == b"D":
                devices.put(_device_decoder.decode(message[1:]))
            elif tag == b"F":
                devices.refresh()
            else:
                conn.send_bytes(_answer(verifier, tag, message))
    finally:
        store.close()


def _answer(verifier: Verifier, tag: bytes, message: bytes) -> bytes:
    request_id = message[1 : 1 + _ID.size]
    try:
        if tag == b"B":
            (now,) = _NOW.unpack_from(message, 1 + _ID.size)
            request = decode_request(message[1 + _ID.size + _NOW.size :])
            result = verifier.check(request.readings, request.batches, now)
            return b"R" + request_id + encode_result(result)
        if tag == b"V":
            checks = _checks_decoder.decode(message[1 + _ID.size :])
            return b"S" + request_id + _encoder.encode(verify_signatures(checks))
        return b"X" + request_id + f"unknown message tag {tag!r}".encode()
    except DecodeError as exc:
        return b"E" + request_id + str(exc).encode()
    except Exception as exc:  # reported to the caller, which checks the body itself
        log.exception("a check worker failed on a request")
        return b"X" + request_id + f"{type(exc).__name__}: {exc}".encode()


# --- the service's side -------------------------------------------------------------------


class _Worker:
    __slots__ = ("alive", "conn", "in_flight", "pending", "process", "send_lock")

    def __init__(self, process: Any, conn: Connection) -> None:
        self.process = process
        self.conn = conn
        self.send_lock = threading.Lock()
        self.pending: dict[int, Future[Any]] = {}
        self.in_flight = 0
        self.alive = True


class CheckPool:
    """`processes` worker processes checking request bodies against the store at `db` /
    `data_dir` (as open_store names it; not "memory:", which a worker cannot share).

    Thread-safe. Raises StoreError-like VeriotError at start when a worker cannot open
    the store. Call `close` when done.
    """

    def __init__(self, processes: int, db: str | None, data_dir: Path, max_skew_s: float) -> None:
        if processes < 1:
            raise ValueError(f"want at least one check process; got {processes}")
        if db == "memory:":
            raise ValueError("check processes need a store they can open too, not memory:")
        self.processes = processes
        self._ids = itertools.count()
        self._lock = threading.Lock()
        self._workers: list[_Worker] = []
        context = multiprocessing.get_context("spawn")  # the service has threads running
        try:
            for n in range(processes):
                parent, child = context.Pipe()
                process = context.Process(
                    target=_serve,
                    args=(child, db, str(data_dir), max_skew_s),
                    name=f"veriot-check-{n}",
                    daemon=True,
                )
                process.start()
                child.close()
                self._workers.append(_Worker(process, parent))
            for worker in self._workers:
                if not worker.conn.poll(START_TIMEOUT_S):
                    raise CheckPoolError(f"a check process did not start in {START_TIMEOUT_S}s")
                hello = worker.conn.recv_bytes()
                if hello != b"ready":
                    raise CheckPoolError(
                        f"a check process could not start: {hello.removeprefix(b'fatal:').decode()}"
                    )
        except BaseException:
            self.close()
            raise
        for n, worker in enumerate(self._workers):
            threading.Thread(
                target=self._read, args=(worker,), name=f"veriot-check-reader-{n}", daemon=True
            ).start()

    @property
    def process_ids(self) -> list[int]:
        """The ids of the check processes still running."""
        return [w.process.pid for w in self._workers if w.alive and w.process.pid is not None]

    # -- requests --------------------------------------------------------------------

    def check(self, body: bytes, now: float) -> Future[CheckResult]:
        """Decodes and checks `body` at receiver time `now` on a worker. The future raises
        DecodeError for a malformed body, CheckPoolError when no worker could answer."""
        return self._send(b"B", _NOW.pack(now), body)

    def __call__(self, checks: Sequence[SignatureCheck]) -> list[bool]:
        """Verifies signatures on a worker (a VerifyMany); a few, or with no worker left,
        on the calling thread."""
        if len(checks) < MIN_SHIPPED:
            return verify_signatures(checks)
        try:
            answer: list[bool] = self._send(b"V", b"", _encoder.encode(list(checks))).result()
        except CheckPoolError:
            return verify_signatures(checks)
        return answer

    def _send(self, tag: bytes, head: bytes, payload: bytes) -> Future[Any]:
        future: Future[Any] = Future()
        request_id = next(self._ids)
        with self._lock:
            alive = [w for w in self._workers if w.alive]
            if not alive:
                future.set_exception(CheckPoolError("no check process is running"))
                return future
            worker = min(alive, key=lambda w: w.in_flight)
            worker.in_flight += 1
            worker.pending[request_id] = future
        try:
            with worker.send_lock:
                worker.conn.send_bytes(tag + _ID.pack(request_id) + head + payload)
        except (OSError, ValueError) as exc:
            self._fail(worker, f"a check process stopped: {exc}")
        return future

    # -- device changes ------------------------------------------------------------------

    def put_device(self, device: Device) -> None:
        """Sends a registered or changed device to every worker, ahead of later bodies."""
        self._broadcast(b"D" + _encoder.encode(device))

    def refresh_devices(self) -> None:
        """Has every worker reload the devices from the store."""
        self._broadcast(b"F")

    def _broadcast(self, message: bytes) -> None:
        for worker in self._workers:
            if worker.alive:
                try:
                    with worker.send_lock:
                        worker.conn.send_bytes(message)
                except (OSError, ValueError) as exc:
                    self._fail(worker, f"a check process stopped: {exc}")

    # -- answers ---------------------------------------------------------------------------

    def _read(self, worker: _Worker) -> None:
        while True:
            try:
                message = worker.conn.recv_bytes()
            except (EOFError, OSError):
                self._fail(worker, "a check process stopped")
                return
            tag = message[:1]
            (request_id,) = _ID.unpack_from(message, 1)
            payload = message[1 + _ID.size :]
            with self._lock:
                future = worker.pending.pop(request_id, None)
                worker.in_flight -= 1
            if future is None or future.done():  # failed already, or its caller gave up
                continue
            try:
                if tag == b"R":
                    future.set_result(decode_result(payload))
                elif tag == b"S":
                    future.set_result(_bools_decoder.decode(payload))
                elif tag == b"E":
                    future.set_exception(DecodeError(payload.decode()))
                else:
                    future.set_exception(CheckPoolError(payload.decode(errors="replace")))
            except msgspec.MsgspecError as exc:
                future.set_exception(CheckPoolError(f"a check process answered badly: {exc}"))
            except InvalidStateError:  # cancelled by its caller meanwhile
                pass

    def _fail(self, worker: _Worker, reason: str) -> None:
        with self._lock:
            if not worker.alive:
                return
            worker.alive = False
            pending = list(worker.pending.values())
            worker.pending.clear()
        if pending:
            log.error("%s; %d requests are checked in the service instead", reason, len(pending))
        for future in pending:
            if not future.done():
                future.set_exception(CheckPoolError(reason))

    def close(self) -> None:
        """Stops every worker (each finishes the message it is on)."""
        for worker in self._workers:
            worker.alive = False
            worker.conn.close()
        for worker in self._workers:
            worker.process.join(10)
            if worker.process.is_alive():
                worker.process.kill()
        self._workers = []
