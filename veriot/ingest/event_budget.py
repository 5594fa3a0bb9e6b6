"""How many security events of one device the log's store keeps: a budget per minute.

Security events are evidence (a replay, an equivocation, a forged signature in a device's
name), so ingest stores them. But a rejected reading costs its sender nothing, and anyone
can replay a device's readings or forge signatures in its name: storing one event per
rejected reading would let them fill the store at the rate they can send. So the
sequencer stores at most `limit` events of each kind for each device in each window of
`window_s` seconds, and counts the rest (`on_drop`, which the service turns into
`veriot_security_events_dropped_total{kind}`). The first event of that device and kind
in a later window is preceded by one summary event that says how many were not stored
and when; the evidence of a flood is its first events, its size and its span.

A budget is spent only on events that were stored: `admit` plans, and the sequencer
`commit`s the plan once the store append that carries the events succeeded. An append that
fails stores none of them, so a plan that is not committed leaves the budget as it was
(and its drops uncounted).

Pure code: event times are the receiver times the events carry; no clock of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from veriot.core.types import SecurityEvent, SecurityEventKind

DEFAULT_LIMIT = 100
"""Security events of one kind stored per device per window."""
DEFAULT_WINDOW_S = 60.0

PRUNE_AT = 10_000
"""Tracked (device, kind) windows beyond which expired ones without drops are forgotten."""


@dataclass(slots=True)
class _Window:
    start: float
    stored: int = 0
    dropped: int = 0
    first_dropped: float = 0.0
    last_dropped: float = 0.0
    last_seq: int | None = None


_Key = tuple[str, SecurityEventKind]


@dataclass(slots=True)
class Admission:
    """What `EventBudget.admit` decided for some events: `events` are the ones to store
    (summaries included); the rest is the budget's state once they are stored, applied by
    `EventBudget.commit`."""

    events: list[SecurityEvent]
    windows: dict[_Key, _Window] = field(default_factory=dict)
    dropped: list[SecurityEventKind] = field(default_factory=list)


class EventBudget:
    """Admits security events to the store within a budget (see the module docstring).
    `limit` 0 admits every event. Not thread-safe: the sequencer thread owns it, and
    commits (or drops) each admission before it admits the next events."""

    def __init__(
        self,
        limit: int = DEFAULT_LIMIT,
        window_s: float = DEFAULT_WINDOW_S,
        on_drop: Callable[[SecurityEventKind], None] | None = None,
    ) -> None:
        if limit < 0 or window_s <= 0:
            raise ValueError(f"want limit >= 0 and window_s > 0; got {limit}, {window_s}")
        self.limit = limit
        self.window_s = window_s
        self.on_drop = on_drop
        self._windows: dict[tuple[str, SecurityEventKind], _Window] = {}

    def admit(self, events: Sequence[SecurityEvent]) -> Admission:
        """Which events to store, in order: those within their budget, each preceded by
        the summary of its device and kind's last window when events were dropped in it.
        The budget is spent only by `commit`."""
        if not self.limit or not events:
            return Admission(list(events))
        out: list[SecurityEvent] = []
        windows = self._windows
        touched: dict[_Key, _Window] = {}  # copies, so that the budget is unchanged
        dropped: list[SecurityEventKind] = []
        for event in events:
            key = (event.device, event.kind)
            window = touched.get(key) or windows.get(key)
            if window is None or event.time >= window.start + self.window_s:
                if window is not None and window.dropped:
                    out.append(self._summary(event.device, event.kind, window))
                if len(windows) >= PRUNE_AT:
                    self._prune(event.time)
                window = touched[key] = _Window(event.time)
            elif key not in touched:
                window = touched[key] = replace(window)
            if window.stored < self.limit:
                window.stored += 1
                out.append(event)
                continue
            if not window.dropped:
                window.first_dropped = event.time
            window.dropped += 1
            window.last_dropped = event.time
            window.last_seq = event.seq
            dropped.append(event.kind)
        return Admission(out, touched, dropped)

    def commit(self, admission: Admission) -> None:
        """Spends the budget as `admission` planned, once its events are stored, and
        counts its drops (`on_drop`)."""
        self._windows.update(admission.windows)
        if self.on_drop is not None:
            for kind in admission.dropped:
                self.on_drop(kind)

    def _summary(self, device: str, kind: SecurityEventKind, window: _Window) -> SecurityEvent:
        return SecurityEvent(
            device,
            kind,
            window.last_dropped,
            window.last_seq,
            f"{window.dropped} more {kind.value} event{'s' if window.dropped != 1 else ''}"
            " of this device between"
            f" {window.first_dropped:.3f} and {window.last_dropped:.3f} were not stored"
            f" (at most {self.limit} are stored per {self.window_s:g} s)",
        )

    def _prune(self, now: float) -> None:
        expired = [
            key
            for key, window in self._windows.items()
            if not window.dropped and now >= window.start + self.window_s
        ]
        for key in expired:
            del self._windows[key]
