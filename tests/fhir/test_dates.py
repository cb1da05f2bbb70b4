"""FHIR date values as ranges, and the search prefixes over them (FHIR R4 §3.1.1.4.6)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from facade.fhir.dates import (
    EARLIEST,
    LATEST,
    DateRange,
    parse_date_range,
    range_matches,
    split_prefix,
)


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


def test_the_last_day_of_the_calendar_has_an_end() -> None:
    last_day = parse_date_range("9999-12-31")
    assert last_day.low == datetime(9999, 12, 31, tzinfo=UTC)
    assert last_day.high == LATEST  # one microsecond past it, clamped to what datetime holds
    assert last_day.end - last_day.start == 86_400 * 1_000_000  # the bounds themselves exact
    assert parse_date_range("9999").end == parse_date_range("9999-12").end == last_day.end


def test_offsets_may_reach_past_either_end_of_the_calendar() -> None:
    before = parse_date_range("0001-01-01T00:00:00+14:00")
    assert before.start < 0 < parse_date_range("0001-01-01").end
    assert before.low == EARLIEST
    after = parse_date_range("9999-12-31T23:59:59-14:00")
    assert after.start > parse_date_range("9999-12-31").end
    assert after.high == LATEST


@pytest.mark.parametrize(
    "text", ["0000", "0000-01-01", "2024-03-05T24:00Z", "2024-03-05T10:00+24:00"]
)
def test_values_outside_the_calendar_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_date_range(text)


@pytest.mark.parametrize(
    "prefix,search,target,expected",
    [
        ("gt", "9999-12-31", "9999-12-31T23:59:59.999999Z", False),
        ("ge", "9999-12-31", "9999-12-31T23:59:59.999999Z", True),
        ("lt", "0001-01-01", "0001-01-01T00:00:00Z", False),
        ("lt", "0001-01-01T00:00:01Z", "0001-01-01T00:00:00+14:00", True),
        ("sa", "9999-12-31T23:59:59Z", "9999-12-31T23:59:59-00:01", True),
        ("eb", "0001-01-01", "0001-01-01T00:00:00+14:00", True),
        ("ap", "9999-12-31", "9999-12-31", True),
        ("ap", "0001-01-01", "0001-01-01", True),
        ("ap", "0001-01-01", "2020-06-15", False),
    ],
)
def test_prefixes_at_the_ends_of_the_calendar(
    prefix: str, search: str, target: str, expected: bool
) -> None:
    assert range_matches(prefix, parse_date_range(search), parse_date_range(target)) is expected


def test_an_open_period_reaches_past_both_ends() -> None:
    ongoing = DateRange.spanning(parse_date_range("2020-01-01"), None)
    assert range_matches("gt", parse_date_range("9999-12-31"), ongoing)
    assert not range_matches("lt", parse_date_range("0001-01-01"), ongoing)
    since_ever = DateRange.spanning(None, parse_date_range("2020-01-01"))
    assert range_matches("lt", parse_date_range("0001-01-01"), since_ever)
    assert (since_ever.low, ongoing.high) == (EARLIEST, LATEST)
