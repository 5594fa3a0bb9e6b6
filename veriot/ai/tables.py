"""Parsing time-series tables from CSV text (pure: the caller reads the file).

A table's first column is a timestamp (seconds since the epoch, or ISO 8601 such as
`2020-03-09 10:14:33`); its other columns are values. Defined behaviour for bad input:

- empty cells and `nan`/`NA`/`null` are missing values (they score 0);
- a column with no numeric cell at all is left out (noted); a column with some
  non-numeric cells is an error naming the first one;
- rows whose timestamps are out of order are scored in time order (a stable sort, so
  duplicate timestamps keep their file order); the output keeps the file's row order.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from veriot.ai.base import FloatArray
from veriot.core.errors import InputError

_MISSING = {"", "nan", "na", "n/a", "null", "none", "-"}


class TableError(InputError):
    """A CSV that cannot be read as a time-series table."""


@dataclass(frozen=True, slots=True)
class Table:
    header: list[str]
    lines: list[str]
    times: FloatArray
    values: FloatArray
    columns: list[str]
    notes: list[str] = field(default_factory=list)


def _delimiter(header: str) -> str:
    return ";" if header.count(";") > header.count(",") else ","


def _parse_times(cells: list[str], name: str) -> FloatArray:
    try:
        return np.array(cells, dtype=np.float64)
    except ValueError:
        pass
    try:
        stamps = np.array(
            [c.strip().replace(" ", "T").rstrip("Z") for c in cells], dtype="datetime64[ns]"
        )
    except ValueError as exc:
        bad = _first_bad_time(cells)
        raise TableError(
            f"row {bad + 2}, column {name!r}: {cells[bad]!r} is not a timestamp "
            "(want seconds since the epoch or ISO 8601)"
        ) from exc
    if np.isnat(stamps).any():
        bad = int(np.flatnonzero(np.isnat(stamps))[0])
        raise TableError(f"row {bad + 2}, column {name!r}: missing timestamp")
    out: FloatArray = stamps.astype(np.int64).astype(np.float64) / 1e9
    return out


def _first_bad_time(cells: list[str]) -> int:
    for i, c in enumerate(cells):
        try:
            float(c)
            continue
        except ValueError:
            pass
        try:
            np.datetime64(c.strip().replace(" ", "T").rstrip("Z"))
        except ValueError:
            return i
    return 0


def _parse_column(cells: list[str]) -> tuple[FloatArray | None, int]:
    """(values, index of first bad cell or -1); None when no cell is numeric."""
    try:
        return np.array(cells, dtype=np.float64), -1
    except ValueError:
        pass
    out = np.empty(len(cells))
    numeric = 0
    first_bad = -1
    for i, c in enumerate(cells):
        s = c.strip()
        if s.lower() in _MISSING:
            out[i] = np.nan
            continue
        try:
            out[i] = float(s)
            numeric += 1
        except ValueError:
            out[i] = np.nan
            if first_bad < 0:
                first_bad = i
    if numeric == 0:
        return None, first_bad
    return out, first_bad


def parse_table(text: str, drop: tuple[str, ...] = ()) -> Table:
    """Parses CSV text (comma or semicolon separated) with a header row.

    `drop` names columns to leave out (such as labels). Raises TableError.
    """
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise TableError("the file is empty; want a header such as 'timestamp,value'")
    sep = _delimiter(lines[0])
    header = [h.strip() for h in lines[0].split(sep)]
    if len(header) < 2:
        raise TableError(
            f"header {lines[0]!r} has {len(header)} column; want a timestamp "
            "column and at least one value column"
        )
    body = lines[1:]
    if not body:
        raise TableError("the file has a header but no rows")
    want = len(header) - 1
    for i, line in enumerate(body):
        if line.count(sep) != want:
            raise TableError(
                f"row {i + 2} has {line.count(sep) + 1} cells; want {len(header)} as in the header"
            )
    flat = sep.join(body).split(sep)
    columns = [flat[j :: len(header)] for j in range(len(header))]
    times = _parse_times(list(columns[0]), header[0])
    notes: list[str] = []
    kept: list[FloatArray] = []
    names: list[str] = []
    for name, cells in zip(header[1:], columns[1:], strict=True):
        if name in drop:
            continue
        values, bad = _parse_column(list(cells))
        if values is None:
            notes.append(f"column {name!r} has no numeric cell; left out")
            continue
        if bad >= 0:
            raise TableError(f"row {bad + 2}, column {name!r}: {cells[bad]!r} is not a number")
        missing = int(np.isnan(values).sum()) + int(np.isinf(values).sum())
        if missing:
            notes.append(f"column {name!r}: {missing} missing value(s) score 0")
        kept.append(np.where(np.isfinite(values), values, np.nan))
        names.append(name)
    if not kept:
        raise TableError("no numeric value column; want at least one besides the timestamp")
    if np.any(np.diff(times) < 0):
        notes.append("timestamps are out of order; rows are scored in time order")
    elif np.any(np.diff(times) == 0):
        notes.append("duplicate timestamps; such rows are scored in file order")
    return Table(header, body, times, np.column_stack(kept), names, notes)


def time_order(times: FloatArray) -> npt.NDArray[np.intp]:
    """The stable order that sorts rows by time."""
    return np.argsort(times, kind="stable")
