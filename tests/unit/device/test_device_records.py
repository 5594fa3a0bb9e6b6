"""Records from `name=value[:unit]` arguments."""

from __future__ import annotations

import pytest

from veriot.core.errors import InputError
from veriot.core.types import Record
from veriot.device import parse_record_args

T = 1764115200.5


def test_values_units_and_names_with_colons() -> None:
    assert parse_record_args(["temp=4.5:Cel", "door=1", "urn:dev:x/hum=-3e2:%RH"], T) == (
        Record("temp", 4.5, T, "Cel"),
        Record("door", 1.0, T, ""),
        Record("urn:dev:x/hum", -300.0, T, "%RH"),
    )


@pytest.mark.parametrize(
    ("arg", "problem"),
    [
        ("temp", "want name=value"),
        ("temp=", "'' is not a number"),
        ("temp=warm", "'warm' is not a number"),
        ("temp=nan", "not finite"),
        ("temp=inf:Cel", "not finite"),
        ("=4", "not a valid SenML name"),
        ("te mp=4", "not a valid SenML name"),
        ("temp=4:deg C", "printable ASCII"),
        ("temp=4:" + "x" * 17, "at most 16"),
    ],
)
def test_bad_arguments_are_refused_naming_them(arg: str, problem: str) -> None:
    with pytest.raises(InputError, match=problem) as info:
        parse_record_args(["ok=1", arg], T)
    assert repr(arg) in str(info.value)


def test_no_arguments_is_refused() -> None:
    with pytest.raises(InputError, match="at least one record"):
        parse_record_args([], T)


def test_a_negative_time_is_refused() -> None:
    with pytest.raises(InputError, match="invalid time"):
        parse_record_args(["temp=1"], -1.0)
