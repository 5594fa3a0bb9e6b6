"""How the stores index alert leaves: shared by the memory, SQLite and PostgreSQL adapters.

An alert leaf (`veriot.ai.alerts.alert_leaf`) is kept whole, as the log committed to it;
beside it sit the fields that alert queries filter on (device, sensor name, time, score),
read from the leaf when it is appended. A leaf that does not parse as an alert keeps NULL
fields and is never listed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from veriot.core.errors import DecodeError, InputError
from veriot.ports import AlertQuery
from veriot.storage.codec import MAX_PAGE, decode_cursor


@dataclass(frozen=True, slots=True)
class AlertColumns:
    device: str
    name: str
    time: float
    score: float


def alert_columns(leaf: bytes) -> AlertColumns | None:
    """The indexed fields of an alert leaf, or None when it does not parse as one."""
    # Imported here: the AI layer loads numpy and scipy, which a store without alerts
    # (and every CLI command that opens one) should not pay for.
    from veriot.ai.alerts import parse_alert_leaf

    try:
        alert = parse_alert_leaf(bytes(leaf))
    except DecodeError:
        return None
    return AlertColumns(alert.device, alert.name, alert.time, alert.score)


def alert_row(
    index: int, leaf: bytes
) -> tuple[int, bytes, str | None, str | None, float | None, float | None]:
    """(idx, leaf, device, name, time, score): the row of the `alerts` table."""
    cols = alert_columns(leaf)
    if cols is None:
        return index, bytes(leaf), None, None, None, None
    return index, bytes(leaf), cols.device, cols.name, cols.time, cols.score


@dataclass(frozen=True, slots=True)
class AlertPlan:
    """A validated AlertQuery: `after` is the log index the page starts after."""

    device: str | None
    name: str | None
    since: float | None
    until: float | None
    min_score: float | None
    limit: int
    after: int

    def matches(self, cols: AlertColumns) -> bool:
        return (
            (self.device is None or cols.device == self.device)
            and (self.name is None or cols.name == self.name)
            and (self.since is None or cols.time >= self.since)
            and (self.until is None or cols.time < self.until)
            and (self.min_score is None or cols.score >= self.min_score)
        )


def plan_alert_query(query: AlertQuery) -> AlertPlan:
    """Validates a query. Raises InputError for a limit outside 1..1000, a bad cursor or
    a bound that is not a finite number."""
    if not 1 <= query.limit <= MAX_PAGE:
        raise InputError(f"limit must be 1..{MAX_PAGE}; got {query.limit}")
    for what, value in (
        ("since", query.since),
        ("until", query.until),
        ("min_score", query.min_score),
    ):
        if value is not None and not math.isfinite(value):
            raise InputError(f"{what} is {value!r}; want a finite number")
    after = -1 if query.cursor is None else decode_cursor(query.cursor)
    return AlertPlan(
        query.device, query.name, query.since, query.until, query.min_score, query.limit, after
    )


def check_recent_limit(limit: int) -> None:
    """Raises InputError unless 1 <= limit."""
    if limit < 1:
        raise InputError(f"limit must be at least 1; got {limit}")
