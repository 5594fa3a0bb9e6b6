"""Request bodies checked on worker processes answer exactly as checking them in the
service does; device changes reach the workers before later bodies; a dead worker's
requests fail with CheckPoolError rather than hang."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import multiprocessing
import os
import struct
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import msgspec
import pytest
import uvloop

from veriot.core import canonical
from veriot.core.canonical import device_prefix
from veriot.core.columns import FixedRuns, HexIds, MessageRuns
from veriot.core.errors import DecodeError
from veriot.core.packed import PackedReadings
from veriot.core.types import Device, Reading, Record, SecurityEventKind, SignedReading
from veriot.core.wire import decode_request, encode_request
from veriot.device import DeviceKey, sign_batch, sign_reading
from veriot.identity.signatures import SignatureCheck, verify_signatures
from veriot.ingest.check_pool import (
    MIN_SHIPPED,
    WORKER_BUNDLE,
    WORKER_QUEUE,
    CheckPool,
    CheckPoolError,
    Frames,
    decode_result,
    encode_result,
    frame,
)
from veriot.ingest.service import HELPER_NICENESS
from veriot.ingest.verdict import Reason, Verdict
from veriot.ingest.verify import Checked, CheckedRun, CheckResult, Verifier
from veriot.ledger.hashing import leaf_hash
from veriot.ports import Store
from veriot.storage import open_store

SKEW = 60.0


class Fleet:
    def __init__(self, store: Store) -> None:
        self.key, self.other, self.stranger = (DeviceKey.generate() for _ in range(3))
        self.store = store
        for key in (self.key, self.other):
            store.add_device(Device(key.did, key.public_key, "d", "generic", time.time() - 10))

    def body(self, now: float, seq0: int = 1) -> bytes:
        records = (Record("temperature", 4.5, now, "Cel"), Record("humidity", 80.0, now, "%RH"))
        own = [sign_reading(self.key, seq0 + i, records) for i in range(10)]
        forged = sign_reading(self.stranger, seq0 + 3, records)
        own[3] = SignedReading(own[3].reading, signature=forged.signature)
        unknown = sign_reading(self.stranger, 1, records)
        ahead = sign_reading(self.key, seq0 + 20, (Record("t", 1.0, now + 10 * SKEW, "Cel"),))
        members = [Reading(self.other.did, seq0 + i, records) for i in range(5)]
        compact, _ = sign_batch(self.other, members)
        _, paths = sign_batch(self.key, [Reading(self.key.did, seq0 + 30, records)])
        return encode_request([*own, unknown, ahead, *paths], [compact])


def check_here(store: Store, body: bytes, now: float) -> CheckResult:
    request = decode_request(body)
    return Verifier(store.get_device, SKEW).check(request.readings, request.batches, now)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("check-pool")


@pytest.fixture(scope="module")
def fleet(data: Path) -> Iterator[Fleet]:
    store = open_store(None, data)
    yield Fleet(store)
    store.close()


@contextlib.contextmanager
def loop_in_a_thread(kind: str) -> Iterator[asyncio.AbstractEventLoop]:
    """An event loop ("asyncio" or "uvloop", which uvicorn runs) running in a thread of
    its own, as the service's runs beside its other threads."""
    loop = uvloop.new_event_loop() if kind == "uvloop" else asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield loop
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


@pytest.fixture(scope="module", params=["threads", "asyncio", "uvloop"])
def answers_on(request: pytest.FixtureRequest) -> Iterator[asyncio.AbstractEventLoop | None]:
    """Where the pool reads its workers' answers: on reader threads, or on an event loop."""
    if request.param == "threads":
        yield None
        return
    with loop_in_a_thread(request.param) as loop:
        yield loop


@pytest.fixture(scope="module")
def pool(
    data: Path, fleet: Fleet, answers_on: asyncio.AbstractEventLoop | None
) -> Iterator[CheckPool]:
    pool = CheckPool(2, None, data, SKEW, answers_on)
    yield pool
    pool.close()


def test_frames_split_what_send_bytes_framed_however_it_arrives() -> None:
    messages = [b"", b"x", bytes(range(256)) * 80]  # the last over 16 KiB: two writes
    reader, writer = multiprocessing.Pipe(duplex=False)
    try:
        sent = []
        for message in messages:  # frame() writes what Connection.send_bytes writes
            writer.send_bytes(message)
            sent.append(os.read(reader.fileno(), len(message) + 100))
        assert sent == [frame(m) for m in messages]
    finally:
        reader.close()
        writer.close()
    stream = b"".join(frame(m) for m in messages)
    for piece in (1, 3, 4, 5, 1000, len(stream)):
        frames = Frames()
        got = []
        for start in range(0, len(stream), piece):
            got += frames.feed(stream[start : start + piece])
        assert got == messages and {type(m) for m in got} == {bytes}
    # the long form, as send_bytes frames 2 GiB and more: -1, then a 64-bit length
    assert Frames().feed(struct.pack("!iQ", -1, 3) + b"abc") == [b"abc"]
    with pytest.raises(ValueError, match="-2 bytes"):
        Frames().feed(struct.pack("!i", -2))


def test_results_cross_the_pipe_unchanged(fleet: Fleet) -> None:
    now = time.time()
    result = check_here(fleet.store, fleet.body(now), now)
    kinds = {type(item) for item in result.items}
    assert kinds == {Checked, Verdict} and result.events
    assert any(isinstance(i, Checked) and i.seal is not None for i in result.items)
    assert any(isinstance(i, Checked) and i.batch is not None for i in result.items)
    again = decode_result(encode_result(result))
    assert again.items == result.items
    assert again.events == result.events
    sealed = [i for i in again.items if isinstance(i, Checked) and i.seal is not None]
    assert all(i.seal is sealed[0].seal for i in sealed)  # one seal object, as sent


@pytest.mark.parametrize("signed", ["own", "paths", "compact"])
def test_a_run_of_one_device_crosses_the_pipe_as_columns(fleet: Fleet, signed: str) -> None:
    now = time.time()
    records = (Record("temperature", 4.5, now, "Cel"),)
    members = [Reading(fleet.key.did, 100 + i, records) for i in range(5)]
    compact, paths = sign_batch(fleet.key, members)
    own = [sign_reading(fleet.key, r.seq, r.records) for r in members]
    readings, batches = {"own": (own, []), "paths": (paths, []), "compact": ([], [compact])}[signed]
    result = check_here(fleet.store, encode_request(readings, batches), now)
    assert all(isinstance(i, Checked) for i in result.items) and len(result.items) == 5

    again = decode_result(encode_result(result))
    assert isinstance(again.items, CheckedRun)
    assert again.items == result.items  # item by item, as Checked values
    assert list(again.items.seqs) == [100, 101, 102, 103, 104]
    assert again.items[1:3] == list(result.items[1:3])
    # The columns the store needs cross beside the readings, which stay packed.
    assert list(again.items.times) == [now] * 5 and list(again.items.names) == ["temperature"]
    assert isinstance(again.items.readings, PackedReadings)
    # ... and its bytes as one blob per column, not one object per reading.
    run = again.items
    assert isinstance(run.ids, HexIds) and isinstance(run.messages, MessageRuns)
    assert isinstance(run.leaf_hashes, FixedRuns)
    assert run.messages.head == device_prefix(fleet.key.did)
    if signed == "own":
        assert isinstance(run.signatures, FixedRuns) and run.signatures == [
            s.signature for s in own
        ]


def test_own_signatures_of_one_device_are_checked_as_columns_and_verified_once(
    fleet: Fleet,
) -> None:
    now = time.time()
    records = (Record("temperature", 4.5, now, "Cel"), Record("humidity", 80.0, now, "%RH"))
    own = [sign_reading(fleet.key, 200 + i, records) for i in range(6)]
    calls: list[int] = []

    def counting(checks: Sequence[SignatureCheck]) -> list[bool]:
        calls.append(len(checks))
        return verify_signatures(checks)

    verifier = Verifier(fleet.store.get_device, SKEW, counting)

    def check(signed: list[SignedReading]) -> CheckResult:
        request = decode_request(encode_request(signed, []))
        return verifier.check(request.readings, request.batches, now)

    result = check(own)
    assert isinstance(result.items, CheckedRun) and calls == [6] and not result.events
    messages = [canonical.reading_message(s.reading) for s in own]
    assert result.items == [
        Checked(
            s.reading,
            canonical.reading_id(m),
            leaf_hash(canonical.reading_leaf(s, m)),
            m,
            signature=s.signature,
        )
        for s, m in zip(own, messages, strict=True)
    ]
    # One forged signature: the request is answered reading by reading, each signature
    # still verified once.
    calls.clear()
    stolen = sign_reading(fleet.other, 202, records).signature
    result = check([*own[:2], SignedReading(own[2].reading, signature=stolen), *own[3:]])
    assert calls == [6]
    assert [isinstance(i, Verdict) and i.reason is Reason.BAD_SIGNATURE for i in result.items] == [
        False,
        False,
        True,
        False,
        False,
        False,
    ]
    assert [e.kind for e in result.events] == [SecurityEventKind.BAD_SIGNATURE]


@pytest.mark.parametrize("column", ["readings", "seqs"])
def test_an_answer_whose_columns_do_not_match_its_ids_is_refused(fleet: Fleet, column: str) -> None:
    now = time.time()
    members = [Reading(fleet.key.did, 1 + i, (Record("t", 1.0, now, "Cel"),)) for i in range(3)]
    compact, _ = sign_batch(fleet.key, members)
    result = check_here(fleet.store, encode_request([], [compact]), now)
    run = CheckedRun.of(result.items)
    assert run is not None
    setattr(run, column, getattr(run, column)[:2])
    with pytest.raises(msgspec.DecodeError, match=f"3 ids has 2 {column}"):
        decode_result(encode_result(CheckResult(run, [])))


def test_a_run_whose_bytes_do_not_fit_the_blobs_crosses_item_by_item(fleet: Fleet) -> None:
    now = time.time()
    members = [Reading(fleet.key.did, 1 + i, (Record("t", 1.0, now, "Cel"),)) for i in range(3)]
    own = [sign_reading(fleet.key, r.seq, r.records) for r in members]
    result = check_here(fleet.store, encode_request(own, []), now)
    odd = [
        msgspec.structs.replace(item, signature=b"short")
        for item in result.items
        if isinstance(item, Checked)
    ]
    again = decode_result(encode_result(CheckResult(odd, [])))
    assert not isinstance(again.items, CheckedRun) and again.items == odd


def test_only_one_devices_increasing_readings_signed_one_way_make_a_run(fleet: Fleet) -> None:
    now = time.time()
    records = (Record("temperature", 4.5, now, "Cel"),)

    def checked(*signed: SignedReading) -> list[Checked | Verdict]:
        return list(check_here(fleet.store, encode_request(list(signed), []), now).items)

    a1, a2 = (sign_reading(fleet.key, seq, records) for seq in (1, 2))
    b1 = sign_reading(fleet.other, 1, records)
    _, (p3,) = sign_batch(fleet.key, [Reading(fleet.key.did, 3, records)])
    forged = SignedReading(a2.reading, signature=b1.signature)
    run = CheckedRun.of(checked(a1, a2))
    assert run is not None and run.device == fleet.key.did and list(run.seqs) == [1, 2]
    assert CheckedRun.of(checked(a2, a1)) is None  # not increasing
    assert CheckedRun.of(checked(a1, a1)) is None  # a duplicate
    assert CheckedRun.of(checked(a1, b1)) is None  # two devices
    assert CheckedRun.of(checked(a1, p3)) is None  # signed two ways
    assert CheckedRun.of(checked(a1, forged)) is None  # a verdict among them
    assert CheckedRun.of([]) is None
    # what is not a run still crosses the pipe item by item
    mixed = check_here(fleet.store, encode_request([a1, b1], []), now)
    assert decode_result(encode_result(mixed)).items == mixed.items


def test_pool_checks_a_body_as_the_service_would(pool: CheckPool, fleet: Fleet) -> None:
    now = time.time()
    body = fleet.body(now)
    got = pool.check(body, now).result(30)
    want = check_here(fleet.store, body, now)
    assert got.items == want.items
    assert got.events == want.events
    reasons = [i.reason for i in got.items if isinstance(i, Verdict)]
    assert reasons == [Reason.BAD_SIGNATURE, Reason.UNKNOWN_DEVICE, Reason.CLOCK_SKEW]


def test_malformed_body_raises_the_same_decode_error(pool: CheckPool) -> None:
    body = b'{"readings": [{"device": 7}]}'
    with pytest.raises(DecodeError) as here:
        decode_request(body)
    with pytest.raises(DecodeError) as there:
        pool.check(body, time.time()).result(30)
    assert str(there.value) == str(here.value)


def test_a_revocation_reaches_every_worker_before_later_bodies(
    pool: CheckPool, fleet: Fleet
) -> None:
    now = time.time()
    device = fleet.store.get_device(fleet.other.did)
    assert device is not None
    pool.put_device(dataclasses.replace(device, revoked_at=now - 1))
    try:
        for _ in range(2 * pool.processes):  # bodies spread over every worker
            result = pool.check(fleet.body(now, seq0=1000), now).result(30)
            batch_members = result.items[-5:]
            assert all(
                isinstance(v, Verdict) and v.reason is Reason.REVOKED_DEVICE for v in batch_members
            )
    finally:
        pool.put_device(device)
    result = pool.check(fleet.body(now, seq0=2000), now).result(30)
    assert all(isinstance(i, Checked) for i in result.items[-5:])


def test_pool_verifies_signature_lists_like_the_caller(pool: CheckPool, fleet: Fleet) -> None:
    key = fleet.key
    checks = [(key.public_key, bytes([i]) * 40, key.sign(bytes([i]) * 40)) for i in range(12)]
    checks[4] = (key.public_key, checks[4][1], bytes(64))
    assert len(checks) >= MIN_SHIPPED
    assert pool(checks) == verify_signatures(checks)
    assert pool(checks)[4] is False and sum(pool(checks)) == 11


def test_dead_workers_fail_their_requests_and_checks_fall_back(
    data: Path, fleet: Fleet, answers_on: asyncio.AbstractEventLoop | None
) -> None:
    pool = CheckPool(1, None, data, SKEW, answers_on)
    try:
        for worker in pool._workers:
            worker.process.kill()
            worker.process.join(10)
        now = time.time()
        with pytest.raises(CheckPoolError):
            pool.check(fleet.body(now), now).result(30)
        key = fleet.key
        checks = [(key.public_key, b"m", key.sign(b"m"))] * MIN_SHIPPED
        assert pool(checks) == [True] * MIN_SHIPPED
    finally:
        pool.close()


def test_pool_needs_a_process_and_a_shared_store(data: Path) -> None:
    with pytest.raises(ValueError, match="at least one"):
        CheckPool(0, None, data, SKEW)
    with pytest.raises(ValueError, match="memory"):
        CheckPool(1, "memory:", data, SKEW)


def test_workers_yield_the_cores_to_the_service_process(pool: CheckPool) -> None:
    own = os.getpriority(os.PRIO_PROCESS, 0)
    for worker in pool._workers:
        niceness = os.getpriority(os.PRIO_PROCESS, worker.process.pid)
        assert niceness == min(19, own + HELPER_NICENESS)


def test_a_request_its_caller_gave_up_on_does_not_stop_later_answers(
    pool: CheckPool, fleet: Fleet
) -> None:
    # An HTTP request whose task is cancelled (the service shutting down, say) cancels its
    # future (asyncio.wrap_future does); the answer that arrives later must not stop the
    # reading of the worker's later answers.
    now = time.time()
    # Checking it takes longer than this thread may wait for the GIL (a switch interval),
    # so the caller gives up before the answer can have come.
    records = (Record("temperature", 4.5, now, "Cel"),)
    slow = encode_request([sign_reading(fleet.key, 3000 + i, records) for i in range(300)], [])
    for _ in range(2 * pool.processes):  # every worker answers a cancelled request
        given_up = pool.check(slow, now)
        assert given_up.cancel()
    body = fleet.body(now, seq0=4000)
    want = check_here(fleet.store, body, now)
    for _ in range(2 * pool.processes):
        assert pool.check(body, now).result(30).items == want.items
    deadline = time.monotonic() + 30
    while pool.in_flight():  # every answer read, the given-up ones too
        assert time.monotonic() < deadline, "answers to given-up requests were not read"
        time.sleep(0.01)


@pytest.fixture(params=["asyncio", "uvloop"])
def on_a_loop(
    request: pytest.FixtureRequest, data: Path, fleet: Fleet
) -> Iterator[tuple[CheckPool, asyncio.AbstractEventLoop]]:
    """A pool that reads its answers on an event loop running in a thread of its own."""
    with loop_in_a_thread(request.param) as loop:
        pool = CheckPool(2, None, data, SKEW, loop)
        yield pool, loop
        pool.close()


def check_at_once(
    pool: CheckPool, loop: asyncio.AbstractEventLoop, bodies: list[bytes], now: float
) -> tuple[list[int], list[CheckResult | BaseException]]:
    """Sends every body from the pool's loop in one turn; returns how many requests each
    worker held once all were sent (before any answer was read), and each body's result
    or error."""
    held: list[int] = []

    async def all_at_once() -> list[CheckResult | BaseException]:
        tasks = [asyncio.ensure_future(pool.check_async(body, now)) for body in bodies]
        await asyncio.sleep(0)  # every task has sent its body; no answer is read yet
        held.extend(w.in_flight for w in pool._workers)
        return await asyncio.gather(*tasks, return_exceptions=True)

    return held, asyncio.run_coroutine_threadsafe(all_at_once(), loop).result(120)


def test_on_the_event_loop_many_large_bodies_at_once_are_all_answered(
    on_a_loop: tuple[CheckPool, asyncio.AbstractEventLoop], fleet: Fleet
) -> None:
    # More bytes than the pipes hold, both ways: a loop that waited to write a body
    # while the worker waited for its answers to be read would never answer.
    pool, loop = on_a_loop
    now = time.time()
    records = (Record("temperature", 4.5, now, "Cel"), Record("humidity", 80.0, now, "%RH"))
    body = encode_request([sign_reading(fleet.key, 10_000 + i, records) for i in range(1000)], [])
    want = check_here(fleet.store, body, now).items
    assert len(body) > 256 << 10  # more than a socket pair buffers one way

    held, results = check_at_once(pool, loop, [body] * 12, now)
    assert all(isinstance(r, CheckResult) and r.items == want for r in results)
    assert held == [WORKER_QUEUE] * pool.processes  # the rest waited in the service
    assert pool.in_flight() == 0


def test_on_the_event_loop_small_bodies_go_to_the_workers_a_few_at_a_time(
    on_a_loop: tuple[CheckPool, asyncio.AbstractEventLoop], fleet: Fleet
) -> None:
    # A worker reads the small bodies that have come in one go and answers them in one
    # write; each still gets its own answer, malformed ones their own error.
    pool, loop = on_a_loop
    now = time.time()
    records = (Record("temperature", 4.5, now, "Cel"),)
    bodies = [
        encode_request([sign_reading(fleet.key, 20_000 + i, records)], [])
        if i % 7
        else b'{"readings": [{"device": %d}]}' % i
        for i in range(3 * WORKER_BUNDLE)
    ]
    held, results = check_at_once(pool, loop, bodies, now)
    assert held == [WORKER_BUNDLE] * pool.processes
    for body, result in zip(bodies, results, strict=True):
        try:
            want = check_here(fleet.store, body, now)
        except DecodeError as exc:
            assert isinstance(result, DecodeError) and str(result) == str(exc)
        else:
            assert isinstance(result, CheckResult) and result.items == want.items
    assert pool.in_flight() == 0


def test_on_the_event_loop_signature_lists_are_verified_there(
    on_a_loop: tuple[CheckPool, asyncio.AbstractEventLoop], fleet: Fleet
) -> None:
    # The loop reads the answers, so it cannot wait for one: it verifies in place.
    pool, loop = on_a_loop
    key = fleet.key
    checks = [(key.public_key, bytes([i]) * 40, key.sign(bytes([i]) * 40)) for i in range(12)]
    checks[4] = (key.public_key, checks[4][1], bytes(64))

    async def verify() -> list[bool]:
        return pool(checks)

    got = asyncio.run_coroutine_threadsafe(verify(), loop).result(30)
    assert got == verify_signatures(checks) and got[4] is False
