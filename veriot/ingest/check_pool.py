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
revocation is in force for every body sent after it (and for those still waiting in the
service for a worker, see WORKER_QUEUE). Workers also verify plain lists of
signatures (the pool is a VerifyMany), for the front doors that check in the service
process (MQTT).

The service reads the answers on its event loop when it has one (`loop`): an answer
then wakes only the loop, which settles the request's future itself, where a reader
thread per worker would wake first and then wake the loop (bench/ingest.py: each
cross-thread wake-up costs tens of microseconds of kernel time on a virtual machine,
more than decoding a small answer). Without a loop, a thread per worker reads them.
Small requests go to a worker several at a time (WORKER_BUNDLE), and the requests of one
turn of the loop leave in one write; a worker reads what has come in one go and answers
it in one write, so they share those wake-ups and system calls.

A worker that dies fails its requests in flight with CheckPoolError; the caller checks
those bodies in its own process, and later bodies go to the workers still alive.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import multiprocessing
import os
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, InvalidStateError
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import msgspec

from veriot.core.canonical import HASH_BYTES, SIGNATURE_BYTES, device_prefix
from veriot.core.columns import FixedRuns, HexIds, MessageRuns
from veriot.core.errors import DecodeError, VeriotError
from veriot.core.packed import PackedReadings, pack_blob
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

WORKER_QUEUE = 2
"""With an event loop, requests a worker holds at most (one it checks, one waiting),
unless they are small (WORKER_BUNDLE); later ones wait in the service for the first
worker to answer. A worker's pipe then never fills, so the loop never waits to write,
and each request goes to the worker that is free first."""

WORKER_BUNDLE = 16
WORKER_BUNDLE_BYTES = 32 * 1024
"""Small requests a worker holds at most, while they come to WORKER_BUNDLE_BYTES at
most: a worker reads what has come in one go and answers it in one write, so small
requests (one reading each, as many devices send them) share the wake-ups and system
calls of the worker and of the event loop that would otherwise cost each more than
checking it (bench/ingest.py)."""

HOLD_ANSWERS_S = 0.0005
"""How long a worker holds answers back at most, to send them with those of the requests
read with them: large requests are answered one by one, small ones a few at a time."""

READ_CHUNK = 1 << 18
"""Bytes read from a worker's pipe per wake-up of the event loop (it wakes again while
more are waiting)."""


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
    packed as one blob (the service hands them on to the alert process without decoding
    them, see veriot.core.packed)."""

    device: str
    readings: bytes
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
            pack_blob(run.readings),
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
            readings = PackedReadings((msgspec.Raw(w.readings),))
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


def _serve(
    inbox: Connection, outbox: Connection, db: str | None, data_dir: str, max_skew_s: float
) -> None:
    """A worker's main loop: answers each message of `inbox` on `outbox`, in order, until
    the service closes `inbox`."""
    # Imported here: the worker is spawned, and only it needs a store of its own.
    from veriot.ingest.devices import DeviceCache
    from veriot.storage import open_store

    try:
        store = open_store(db, Path(data_dir))
        devices = DeviceCache(store)
    except Exception as exc:  # the service reports it and does not start
        outbox.send_bytes(b"fatal:" + f"{type(exc).__name__}: {exc}".encode())
        return
    verifier = Verifier(devices.get, max_skew_s)
    tune_gc_for_service()
    lower_helper_priority()
    outbox.send_bytes(b"ready")
    frames = Frames()
    try:
        while True:
            # Everything that has come, in one read; its answers, in one write.
            data = os.read(inbox.fileno(), READ_CHUNK)
            if not data:
                return
            answers: list[bytes] = []
            since = time.monotonic()
            for message in frames.feed(data):
                tag = message[:1]
                if tag == b"D":
                    devices.put(_device_decoder.decode(message[1:]))
                elif tag == b"F":
                    devices.refresh()
                else:
                    answers.append(frame(_answer(verifier, tag, message)))
                    if time.monotonic() - since >= HOLD_ANSWERS_S:
                        _write_all(outbox.fileno(), b"".join(answers))
                        answers.clear()
                        since = time.monotonic()
            if answers:
                _write_all(outbox.fileno(), b"".join(answers))
    except OSError:  # the service closed the pipes
        return
    finally:
        store.close()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


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

_LENGTH = struct.Struct("!i")
_LONG_LENGTH = struct.Struct("!Q")


class Frames:
    """Splits the bytes read from a multiprocessing Connection's pipe into the messages
    that `send_bytes` framed: a signed 32-bit big-endian length (or -1 and an unsigned
    64-bit length) before each message. Feed it bytes as they arrive, in any pieces."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        """The messages completed by `data`, in order; a partial one waits for more."""
        buffer = self._buffer
        if buffer:
            buffer += data
            if _framed(buffer, 0) is None:  # a long message still coming: no copy
                return []
            data = bytes(buffer)
        # Messages are sliced from `data` (a bytes slice is one copy); what is left of
        # a partial one waits in the buffer.
        messages: list[bytes] = []
        at = 0
        while (span := _framed(data, at)) is not None:
            start, end = span
            messages.append(data[start:end])
            at = end
        buffer[:] = data[at:]
        return messages


def _framed(data: bytes | bytearray, at: int) -> tuple[int, int] | None:
    """(start, end) of the message framed at `at` in `data`, or None while it is not all
    there. Raises ValueError for a negative length."""
    if len(data) - at < _LENGTH.size:
        return None
    (size,) = _LENGTH.unpack_from(data, at)
    head = _LENGTH.size
    if size == -1:
        if len(data) - at < head + _LONG_LENGTH.size:
            return None
        (size,) = _LONG_LENGTH.unpack_from(data, at + head)
        head += _LONG_LENGTH.size
    elif size < 0:
        raise ValueError(f"a message of {size} bytes")
    if len(data) - at - head < size:
        return None
    return at + head, at + head + size


def frame(message: bytes) -> bytes:
    """`message` framed as `send_bytes` frames it (see Frames)."""
    if len(message) <= 0x7FFFFFFF:
        return _LENGTH.pack(len(message)) + message
    return _LENGTH.pack(-1) + _LONG_LENGTH.pack(len(message)) + message


_Pending = Future[Any] | asyncio.Future[Any]
"""A request's future: a thread's, or (`CheckPool.check_async`) the event loop's."""


class _Worker:
    """A worker process and the service's ends of its two pipes: `requests` (the service
    only sends) and `answers` (the service only reads). One pipe each way because the
    event loop makes the end it watches non-blocking, which a sending end must not be."""

    __slots__ = (
        "alive",
        "answers",
        "flush_due",
        "frames",
        "in_flight",
        "in_flight_bytes",
        "outgoing",
        "pending",
        "process",
        "requests",
        "send_lock",
        "writing",
    )

    def __init__(self, process: Any, requests: Connection, answers: Connection) -> None:
        self.process = process
        self.requests = requests
        self.answers = answers
        self.send_lock = threading.Lock()
        self.pending: dict[int, tuple[_Pending, int]] = {}  # (future, message bytes)
        self.in_flight = 0
        self.in_flight_bytes = 0
        self.alive = True
        self.frames = Frames()
        self.outgoing = bytearray()  # framed messages, for the event loop to write
        self.writing = False  # the loop waits to write more
        self.flush_due = False  # the loop will write the outgoing queue soon

    def takes(self, size: int) -> bool:
        """Whether the worker takes another request of `size` bytes now (with an event
        loop; see WORKER_QUEUE and WORKER_BUNDLE)."""
        if self.in_flight < WORKER_QUEUE:
            return True
        return self.in_flight < WORKER_BUNDLE and self.in_flight_bytes + size <= WORKER_BUNDLE_BYTES


class CheckPool:
    """`processes` worker processes checking request bodies against the store at `db` /
    `data_dir` (as open_store names it; not "memory:", which a worker cannot share).

    With `loop`, the answers are read on that event loop (which must run while the pool
    is in use, and `check_async` there awaits them without a thread hop); without one, on
    a thread per worker.

    Thread-safe. Raises StoreError-like VeriotError at start when a worker cannot open
    the store. Call `close` when done.
    """

    def __init__(
        self,
        processes: int,
        db: str | None,
        data_dir: Path,
        max_skew_s: float,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        if processes < 1:
            raise ValueError(f"want at least one check process; got {processes}")
        if db == "memory:":
            raise ValueError("check processes need a store they can open too, not memory:")
        self.processes = processes
        self._ids = itertools.count()
        self._lock = threading.Lock()
        self._workers: list[_Worker] = []
        self._loop = loop
        self._loop_thread: int | None = None  # set once the loop reads the answers
        # Requests not yet sent to a worker (with a loop, while every worker holds
        # WORKER_QUEUE).
        self._backlog: deque[tuple[int, _Pending, bytes]] = deque()
        context = multiprocessing.get_context("spawn")  # the service has threads running
        try:
            for n in range(processes):
                # Socket pairs, each used one way: they buffer more than a pipe does
                # (a sender waits less for a busy worker).
                requests, inbox = context.Pipe()
                answers, outbox = context.Pipe()
                process = context.Process(
                    target=_serve,
                    args=(inbox, outbox, db, str(data_dir), max_skew_s),
                    name=f"veriot-check-{n}",
                    daemon=True,
                )
                process.start()
                inbox.close()
                outbox.close()
                self._workers.append(_Worker(process, requests, answers))
            for worker in self._workers:
                if not worker.answers.poll(START_TIMEOUT_S):
                    raise CheckPoolError(f"a check process did not start in {START_TIMEOUT_S}s")
                hello = worker.answers.recv_bytes()
                if hello != b"ready":
                    raise CheckPoolError(
                        f"a check process could not start: {hello.removeprefix(b'fatal:').decode()}"
                    )
        except BaseException:
            self.close()
            raise
        if loop is not None:
            for worker in self._workers:
                os.set_blocking(worker.requests.fileno(), False)
            loop.call_soon_threadsafe(self._watch)
            return
        for n, worker in enumerate(self._workers):
            threading.Thread(
                target=self._read, args=(worker,), name=f"veriot-check-reader-{n}", daemon=True
            ).start()

    def in_flight(self) -> int:
        """How many requests are being checked or wait for a worker."""
        return len(self._backlog) + sum(w.in_flight for w in self._workers if w.alive)

    @property
    def process_ids(self) -> list[int]:
        """The ids of the check processes still running."""
        return [w.process.pid for w in self._workers if w.alive and w.process.pid is not None]

    # -- requests --------------------------------------------------------------------

    def check(self, body: bytes, now: float) -> Future[CheckResult]:
        """Decodes and checks `body` at receiver time `now` on a worker. The future raises
        DecodeError for a malformed body, CheckPoolError when no worker could answer."""
        future: Future[CheckResult] = Future()
        self._send(future, b"B", _NOW.pack(now), body)
        return future

    async def check_async(self, body: bytes, now: float) -> CheckResult:
        """`check`, awaited. On the pool's own event loop the answer settles the awaiting
        task's future directly."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop or threading.get_ident() != self._loop_thread:
            return await asyncio.wrap_future(self.check(body, now))
        future: asyncio.Future[CheckResult] = loop.create_future()
        self._send(future, b"B", _NOW.pack(now), body)
        return await future

    def __call__(self, checks: Sequence[SignatureCheck]) -> list[bool]:
        """Verifies signatures on a worker (a VerifyMany); a few, or with no worker left,
        on the calling thread. On the pool's event loop, which reads the answers and so
        cannot wait for one, always on the calling thread."""
        if len(checks) < MIN_SHIPPED or threading.get_ident() == self._loop_thread:
            return verify_signatures(checks)
        future: Future[list[bool]] = Future()
        self._send(future, b"V", b"", _encoder.encode(list(checks)))
        try:
            return future.result()
        except CheckPoolError:
            return verify_signatures(checks)

    def _send(self, future: _Pending, tag: bytes, head: bytes, payload: bytes) -> None:
        request_id = next(self._ids)
        with self._lock:
            self._backlog.append((request_id, future, tag + _ID.pack(request_id) + head + payload))
        self._dispatch()

    def _dispatch(self) -> None:
        """Sends waiting requests to the least busy workers: all of them without an event
        loop, and with one as long as the least busy worker takes them (_Worker.takes)."""
        sends: list[tuple[_Worker, bytes]] = []
        failed: list[_Pending] = []
        with self._lock:
            alive = [w for w in self._workers if w.alive]  # _fail marks deaths under this lock
            if not alive:
                failed = [future for _, future, _ in self._backlog]
                self._backlog.clear()
            while self._backlog:
                worker = min(alive, key=lambda w: w.in_flight)
                request_id, future, message = self._backlog[0]
                if self._loop is not None and not worker.takes(len(message)):
                    break
                self._backlog.popleft()
                worker.in_flight += 1
                worker.in_flight_bytes += len(message)
                worker.pending[request_id] = (future, len(message))
                sends.append((worker, message))
        for worker, message in sends:
            self._post(worker, message)
        for future in failed:
            self._settle_failed(future, "no check process is running")

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
                self._post(worker, message)

    # -- sending ---------------------------------------------------------------------------

    def _post(self, worker: _Worker, message: bytes) -> None:
        """Sends `message` to `worker`, after every message posted before it. Without an
        event loop, at once, waiting while the pipe is full. With one, through the
        worker's queue, which the loop writes without ever waiting: it also reads the
        answers, and waiting on a worker that waits for its answers to be read would
        deadlock."""
        if self._loop is None:
            try:
                with worker.send_lock:
                    worker.requests.send_bytes(message)
            except (OSError, ValueError) as exc:
                self._fail(worker, f"a check process stopped: {exc}")
            return
        with worker.send_lock:
            worker.outgoing += frame(message)
            if worker.flush_due:
                return
            worker.flush_due = True
        self._on_loop(self._flush_soon, worker)

    def _flush_soon(self, worker: _Worker) -> None:
        """On the event loop: writes the worker's queue once the loop has run what is
        ready now, so that the requests of one turn leave in one write (and the worker
        reads them in one go)."""
        loop = self._loop
        assert loop is not None
        if loop.is_running() and threading.get_ident() == self._loop_thread:
            loop.call_soon(self._flush, worker)
        else:  # the loop has stopped: nothing else writes now
            self._flush(worker)

    def _flush(self, worker: _Worker) -> None:
        """On the event loop: writes what the pipe takes of the worker's queue, and has
        the loop call again when it takes more."""
        loop = self._loop
        assert loop is not None
        failed: Exception | None = None
        with worker.send_lock:
            worker.flush_due = False
            outgoing = worker.outgoing
            try:
                fd = worker.requests.fileno()
                if outgoing:
                    with contextlib.suppress(BlockingIOError):  # the pipe is full
                        del outgoing[: os.write(fd, outgoing)]
                if outgoing and not worker.writing:
                    loop.add_writer(fd, self._flush, worker)
                    worker.writing = True
                elif not outgoing and worker.writing:
                    loop.remove_writer(fd)
                    worker.writing = False
            except (OSError, ValueError) as exc:
                failed = exc
        if failed is not None:
            self._fail(worker, f"a check process stopped: {failed}")

    # -- answers ---------------------------------------------------------------------------

    def _read(self, worker: _Worker) -> None:
        """A reader thread's loop (without an event loop)."""
        while True:
            try:
                message = worker.answers.recv_bytes()
            except (EOFError, OSError, TypeError, ValueError):
                # TypeError, ValueError: close() closed the pipe under this read
                self._fail(worker, "a check process stopped")
                return
            self._answered(worker, message)

    def _watch(self) -> None:
        """On the event loop: reads each worker's answers when they arrive."""
        loop = self._loop
        assert loop is not None
        self._loop_thread = threading.get_ident()
        for worker in self._workers:
            if worker.alive:
                loop.add_reader(worker.answers.fileno(), self._readable, worker)

    def _readable(self, worker: _Worker) -> None:
        """On the event loop, when a worker's pipe has bytes: settles the requests whose
        answers are complete."""
        try:
            data = os.read(worker.answers.fileno(), READ_CHUNK)
            messages = worker.frames.feed(data) if data else None
        except BlockingIOError:  # woken with nothing to read after all
            return
        except (OSError, ValueError) as exc:
            self._fail(worker, f"a check process stopped: {exc}")
            return
        if messages is None:
            self._fail(worker, "a check process stopped")
            return
        for message in messages:
            self._answered(worker, message)

    def _answered(self, worker: _Worker, message: bytes) -> None:
        tag = message[:1]
        (request_id,) = _ID.unpack_from(message, 1)
        payload = message[1 + _ID.size :]
        with self._lock:
            future, size = worker.pending.pop(request_id, (None, 0))
            worker.in_flight -= 1
            worker.in_flight_bytes -= size
        if self._backlog:
            self._dispatch()
        if future is None or future.done():  # failed already, or its caller gave up
            return
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
            pending = [future for future, _ in worker.pending.values()]
            worker.pending.clear()
        if self._loop_thread is not None:
            self._on_loop(self._unwatch, worker)
        if pending:
            log.error("%s; %d requests are checked in the service instead", reason, len(pending))
        for future in pending:
            self._settle_failed(future, reason)
        if self._backlog:
            self._dispatch()

    def _settle_failed(self, future: _Pending, reason: str) -> None:
        if isinstance(future, asyncio.Future):
            self._on_loop(_fail_future, future, reason)
        else:
            _fail_future(future, reason)

    def _unwatch(self, worker: _Worker) -> None:
        """On the event loop (or with it stopped): stops reading a worker's pipe."""
        assert self._loop is not None
        if self._loop.is_closed():
            return
        if not worker.answers.closed:
            self._loop.remove_reader(worker.answers.fileno())
        if worker.writing and not worker.requests.closed:
            self._loop.remove_writer(worker.requests.fileno())
            worker.writing = False

    def _on_loop(self, call: Callable[..., object], *args: Any) -> None:
        """Runs `call(*args)` on the event loop: at once when on it, or when it is not
        running (nothing else touches what it reads then), else soon."""
        loop = self._loop
        assert loop is not None
        if threading.get_ident() == self._loop_thread or not loop.is_running():
            call(*args)
        else:
            loop.call_soon_threadsafe(call, *args)

    def close(self) -> None:
        """Stops every worker (each finishes the message it is on)."""
        if self._loop_thread is not None:
            done: Future[None] = Future()
            self._on_loop(self._unwatch_all, done)
            try:
                done.result(START_TIMEOUT_S)
            except TimeoutError:
                log.error("the event loop did not stop reading the check processes' pipes")
            for worker in self._workers:
                self._fail(worker, "the check pool closed")
        for worker in self._workers:
            worker.alive = False
            worker.requests.close()
            worker.answers.close()
        for worker in self._workers:
            worker.process.join(10)
            if worker.process.is_alive():
                worker.process.kill()
        self._workers = []

    def _unwatch_all(self, done: Future[None]) -> None:
        for worker in self._workers:
            self._unwatch(worker)
        done.set_result(None)


def _fail_future(future: _Pending, reason: str) -> None:
    if not future.done():
        future.set_exception(CheckPoolError(reason))
