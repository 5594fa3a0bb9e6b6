"""Building SenML records from `name=value[:unit]` strings, as typed on a command line."""

from __future__ import annotations

import math
from collections.abc import Iterable

from veriot.core.canonical import check_record
from veriot.core.errors import InputError
from veriot.core.types import Record


def parse_record_arg(arg: str, time: float) -> Record:
    """One record from `name=value` or `name=value:unit`, e.g. "temp=4.5:Cel".

    The name may itself contain ':' (SenML allows it); the first '=' ends it. Raises
    InputError naming the argument when it does not parse or is not a valid record.
    """
    name, eq, rest = arg.partition("=")
    if not eq:
        raise InputError(f"record {arg!r}: want name=value or name=value:unit")
    text, _, unit = rest.partition(":")
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"record {arg!r}: value {text!r} is not a number") from None
    if not math.isfinite(value):
        raise InputError(f"record {arg!r}: value {text!r} is not finite")
    record = Record(name=name, value=value, time=time, unit=unit)
    try:
        check_record(record)
    except InputError as exc:
        raise InputError(f"record {arg!r}: {exc}") from None
    return record


def parse_record_args(args: Iterable[str], time: float) -> tuple[Record, ...]:
    """Records from `name=value[:unit]` strings, all at `time` (seconds since the epoch).
    Raises InputError for the first bad argument, or when there are none."""
    records = tuple(parse_record_arg(a, time) for a in args)
    if not records:
        raise InputError("give at least one record as name=value[:unit]")
    return records
