"""FHIR date values as ranges, and the search prefixes over them (FHIR R4 §3.1.1.4.6)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from facade.fhir.dates import parse_date_range, range_matches, split_prefix


def test_precision_sets_the_range() -> None:
    year = parse_date_range("2024")
    assert (year.low, year.high) == (
        datetime(2024, 1, 1, tzinfo=UTC),
        datetime(2025, 1, 1, tzinfo=UTC),
    )
    december = parse_date_range("2023-12")
    assert december.high == datetime(2024, 1, 1, tzinfo=UTC)
    day = parse_date_range("2024-02-29")
    assert day.high == datetime(2024, 3, 1, tzinfo=UTC)
    minute = parse_date_range("2024-03-05T10:30+02:00")
    assert minute.low == datetime(2024, 3, 5, 8, 30, tzinfo=UTC)
    assert (minute.high - minute.low).total_seconds() == 60
    second = parse_date_range("2024-03-05T10:30:15Z")
    assert (second.high - second.low).total_seconds() == 1


@pytest.mark.parametrize("text", ["2024-13-01", "2024-02-30", "24", "2024/01/01", "today", ""])
def test_invalid_dates_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_date_range(text)


def test_prefix_is_split_off() -> None:
    assert split_prefix("ge2020") == ("ge", "2020")
    assert split_prefix("2020-01-01") == ("eq", "2020-01-01")
    assert split_prefix("ap2020") == ("ap", "2020")


@pytest.mark.parametrize(
    "prefix,target,expected",
    [
        ("eq", "2020-06-15", True),
        ("eq", "2020-06-15T10:00:00Z", True),
        ("eq", "2020-06", False),  # the month is wider than the day searched for
        ("ne", "2020-06-16", True),
        ("gt", "2020-06-16", True),
        ("gt", "2020-06-15", False),
        ("ge", "2020-06-15", True),
        ("ge", "2020-06-14", False),
        ("lt", "2020-06-14", True),
        ("lt", "2020-06-15", False),
        ("le", "2020-06-15", True),
        ("le", "2020-06-16", False),
        ("sa", "2020-06-16", True),
        ("eb", "2020-06-14", True),
        ("eb", "2020-06-15", False),
    ],
)
def test_prefixes_compare_ranges(prefix: str, target: str, expected: bool) -> None:
    search = parse_date_range("2020-06-15")
    assert range_matches(prefix, search, parse_date_range(target)) is expected
