"""IngestService.submit_when_checked: a check's result goes to the sequencer from the
thread that completes the check, and the caller gets the sequencer's verdicts or the
error of whichever step failed."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any

import pytest

from veriot.clock import SystemClock
from veriot.core.errors import DecodeError, StoreError
from veriot.core.types import SecurityEvent, SecurityEventKind
from veriot.ingest.metrics import IngestMetrics
from veriot.ingest.service import IngestService
from veriot.ingest.verdict import Reason, Verdict, rejected
from veriot.ingest.verify import CheckResult, Verifier


class RecordingSequencer:
    """Answers each submission with the future the test hands it, and notes the thread."""

    def __init__(self) -> None:
        self.submissions: list[tuple[Sequence[Any], Sequence[SecurityEvent], str]] = []
        self.answer: Future[list[Verdict]] = Future()

    def submit(
        self, items: Sequence[Any], events: Sequence[SecurityEvent] = ()
    ) -> Future[list[Verdict]]:
        self.submissions.append((items, events, threading.current_thread().name))
        return self.answer


def service(sequencer: RecordingSequencer) -> IngestService:
    verifier = Verifier(lambda did: None, 60.0)
    return IngestService(verifier, sequencer, IngestMetrics(), SystemClock())  # type: ignore[arg-type]


def complete_on_a_thread(
    checking: Future[CheckResult], result: CheckResult | BaseException
) -> None:
    def finish() -> None:
        if isinstance(result, BaseException):
            checking.set_exception(result)
        else:
            checking.set_result(result)

    worker = threading.Thread(target=finish, name="check-reader")
    worker.start()
    worker.join()


def test_the_checked_result_is_sequenced_by_the_thread_that_completed_the_check() -> None:
    sequencer = RecordingSequencer()
    checking: Future[CheckResult] = Future()
    verdicts = service(sequencer).submit_when_checked(checking)
    assert sequencer.submissions == [] and not verdicts.done()

    refused = rejected(Reason.REPLAY, "seen before")
    event = SecurityEvent("did:key:z6Mk", SecurityEventKind.REPLAY, 1.0, 7, "seen before")
    complete_on_a_thread(checking, CheckResult(items=[refused], events=[event]))
    [(items, events, thread)] = sequencer.submissions
    assert list(items) == [refused] and list(events) == [event]
    assert thread == "check-reader"  # not the caller's thread (the event loop's)
    assert not verdicts.done()  # durable only once the sequencer answers

    sequencer.answer.set_result([refused])
    assert verdicts.result(timeout=5) == [refused]


def test_a_check_that_fails_reaches_the_caller_and_nothing_is_sequenced() -> None:
    sequencer = RecordingSequencer()
    checking: Future[CheckResult] = Future()
    verdicts = service(sequencer).submit_when_checked(checking)
    complete_on_a_thread(checking, DecodeError("$.readings: expected an array"))
    with pytest.raises(DecodeError, match="expected an array"):
        verdicts.result(timeout=5)
    assert sequencer.submissions == []


def test_a_sequencer_failure_reaches_the_caller() -> None:
    sequencer = RecordingSequencer()
    checking: Future[CheckResult] = Future()
    verdicts = service(sequencer).submit_when_checked(checking)
    complete_on_a_thread(checking, CheckResult(items=[], events=[]))
    sequencer.answer.set_exception(StoreError("disk full"))
    with pytest.raises(StoreError, match="disk full"):
        verdicts.result(timeout=5)


def test_a_check_already_done_is_sequenced_at_once() -> None:
    sequencer = RecordingSequencer()
    checking: Future[CheckResult] = Future()
    checking.set_result(CheckResult(items=[], events=[]))
    sequencer.answer.set_result([])
    assert service(sequencer).submit_when_checked(checking).result(timeout=5) == []
    assert len(sequencer.submissions) == 1
