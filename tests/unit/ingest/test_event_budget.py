"""EventBudget: at most `limit` security events of a kind per device per window are
stored; the rest are counted, and summed up in one event when the device's next window
opens. Only a committed admission (its events were stored) spends the budget."""

from __future__ import annotations

import pytest

from veriot.core.types import SecurityEvent, SecurityEventKind
from veriot.ingest.event_budget import PRUNE_AT, EventBudget

BAD = SecurityEventKind.BAD_SIGNATURE
REPLAY = SecurityEventKind.REPLAY


def event(device: str, kind: SecurityEventKind, time: float, seq: int = 1) -> SecurityEvent:
    return SecurityEvent(device, kind, time, seq, f"{kind.value} at {time}")


def store(budget: EventBudget, events: list[SecurityEvent]) -> list[SecurityEvent]:
    """The events `budget` admits, committed as the sequencer does after a good append."""
    admission = budget.admit(events)
    budget.commit(admission)
    return admission.events


def test_a_flood_is_stored_up_to_the_limit_and_counted_beyond_it() -> None:
    dropped: list[SecurityEventKind] = []
    budget = EventBudget(limit=3, window_s=60.0, on_drop=dropped.append)
    flood = [event("did:a", BAD, 1000.0 + i, seq=i) for i in range(10)]
    assert store(budget, flood[:2]) == flood[:2]
    assert store(budget, flood[2:]) == flood[2:3]  # the budget spans calls
    assert dropped == [BAD] * 7


def test_devices_and_kinds_have_budgets_of_their_own() -> None:
    budget = EventBudget(limit=1, window_s=60.0)
    events = [
        event("did:a", BAD, 1.0),
        event("did:a", BAD, 2.0),  # over a's bad-signature budget
        event("did:a", REPLAY, 3.0),
        event("did:b", BAD, 4.0),
    ]
    assert store(budget, events) == [events[0], events[2], events[3]]


def test_the_next_window_opens_with_a_summary_of_what_was_not_stored() -> None:
    budget = EventBudget(limit=2, window_s=60.0)
    first = [event("did:a", BAD, 100.0 + i, seq=10 + i) for i in range(5)]
    assert store(budget, first) == first[:2]
    later = event("did:a", BAD, 160.0, seq=99)
    summary, again = store(budget, [later])
    assert again == later
    assert (summary.device, summary.kind, summary.time, summary.seq) == ("did:a", BAD, 104.0, 14)
    assert "3 more bad_signature events" in summary.detail
    assert "102.000 and 104.000" in summary.detail
    # The new window has its own budget, and owes no summary once nothing was dropped.
    more = [event("did:a", BAD, 161.0), event("did:a", BAD, 250.0)]
    assert store(budget, more) == more


def test_a_window_runs_from_its_first_event_not_from_the_clock() -> None:
    budget = EventBudget(limit=1, window_s=10.0)
    assert len(store(budget, [event("did:a", BAD, 5.0), event("did:a", BAD, 14.9)])) == 1
    assert len(store(budget, [event("did:a", BAD, 15.0)])) == 2  # the summary and the event


def test_limit_zero_stores_every_event() -> None:
    budget = EventBudget(limit=0)
    flood = [event("did:a", BAD, 1.0)] * 1000
    assert store(budget, flood) == flood


def test_windows_without_drops_are_forgotten_once_expired() -> None:
    budget = EventBudget(limit=1, window_s=1.0)
    store(budget, [event("did:flooded", BAD, 0.0), event("did:flooded", BAD, 0.5)])
    store(budget, [event(f"did:{i}", REPLAY, 0.0) for i in range(PRUNE_AT)])
    store(budget, [event("did:new", REPLAY, 5.0)])
    assert len(budget._windows) == 2  # the new one, and the one that still owes a summary
    summary, _ = store(budget, [event("did:flooded", BAD, 6.0)])
    assert "1 more bad_signature event of this device" in summary.detail


@pytest.mark.parametrize(("limit", "window_s"), [(-1, 60.0), (10, 0.0)])
def test_a_budget_needs_a_limit_and_a_window(limit: int, window_s: float) -> None:
    with pytest.raises(ValueError):
        EventBudget(limit, window_s)


def test_an_admission_not_committed_spends_nothing_and_counts_no_drop() -> None:
    # The sequencer commits an admission only once the append carrying its events
    # succeeded: a failed append must not use up the device's budget for the minute.
    dropped: list[SecurityEventKind] = []
    budget = EventBudget(limit=2, window_s=60.0, on_drop=dropped.append)
    flood = [event("did:a", BAD, 1000.0 + i, seq=i) for i in range(5)]
    failed = budget.admit(flood)
    assert failed.events == flood[:2]
    assert dropped == []
    assert store(budget, flood) == flood[:2]  # the same events, admitted again
    assert dropped == [BAD] * 3
    assert store(budget, [event("did:a", BAD, 1010.0)]) == []


def test_a_summary_whose_append_failed_is_owed_again() -> None:
    budget = EventBudget(limit=1, window_s=10.0)
    store(budget, [event("did:a", BAD, 0.0), event("did:a", BAD, 1.0)])
    later = event("did:a", BAD, 20.0)
    summary, _ = budget.admit([later]).events  # not committed: its append failed
    assert "1 more bad_signature event" in summary.detail
    again = store(budget, [later])
    assert again == [summary, later]
