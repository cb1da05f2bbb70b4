"""FHIR date, dateTime and instant values as half-open time ranges, and the search prefixes.

A value of any precision (2024, 2024-03, 2024-03-05, 2024-03-05T10:00:00Z) stands for the
range it covers. Comparisons follow the FHIR R4 search rules for ranges; values without a
time zone are read as UTC.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

_DATE_RE = re.compile(
    r"^(?P<y>\d{4})(?:-(?P<m>\d{2})(?:-(?P<d>\d{2})"
    r"(?:T(?P<H>\d{2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?P<f>\.\d+)?)?"
    r"(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?$"
)

PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")


@dataclass(frozen=True)
class DateRange:
    low: datetime
    high: datetime  # exclusive


def parse_date_range(text: str) -> DateRange:
    """The range a FHIR date/dateTime/instant covers; ValueError if it is not one."""
    match = _DATE_RE.match(text.strip())
    if not match:
        raise ValueError(f"not a FHIR date: {text!r}")
    year = int(match["y"])
    if match["m"] is None:
        low = datetime(year, 1, 1, tzinfo=UTC)
        return DateRange(low, low.replace(year=year + 1))
    month = int(match["m"])
    if match["d"] is None:
        low = datetime(year, month, 1, tzinfo=UTC)
        high = low.replace(year=year + 1, month=1) if month == 12 else low.replace(month=month + 1)
        return DateRange(low, high)
    day = int(match["d"])
    if match["H"] is None:
        low = datetime(year, month, day, tzinfo=UTC)
        return DateRange(low, low + timedelta(days=1))
    tz: timezone = UTC
    if match["tz"] and match["tz"] != "Z":
        sign = 1 if match["tz"][0] == "+" else -1
        hours, minutes = match["tz"][1:].split(":")
        tz = _offset(sign * (int(hours) * 60 + int(minutes)))
    seconds_given = match["S"] is not None
    low = datetime(
        year,
        month,
        day,
        int(match["H"]),
        int(match["M"]),
        int(match["S"] or 0),
        int(float(match["f"] or 0) * 1_000_000),
        tzinfo=tz,
    ).astimezone(UTC)
    if match["f"]:
        step = timedelta(microseconds=1)
    elif seconds_given:
        step = timedelta(seconds=1)
    else:
        step = timedelta(minutes=1)
    return DateRange(low, low + step)


def _offset(minutes: int) -> timezone:
    return timezone(timedelta(minutes=minutes))


def split_prefix(text: str) -> tuple[str, str]:
    """('ge', '2020-01-01') from 'ge2020-01-01'; 'eq' when no prefix is given."""
    if len(text) > 2 and text[:2] in PREFIXES and not text[:2].isdigit():
        return text[:2], text[2:]
    return "eq", text


def range_matches(prefix: str, search: DateRange, target: DateRange) -> bool:
    contained = search.low <= target.low and target.high <= search.high
    if prefix == "eq":
        return contained
    if prefix == "ne":
        return not contained
    if prefix == "gt":
        return target.high > search.high
    if prefix == "lt":
        return target.low < search.low
    if prefix == "ge":
        return target.high > search.high or contained
    if prefix == "le":
        return target.low < search.low or contained
    if prefix == "sa":
        return target.low >= search.high
    if prefix == "eb":
        return target.high <= search.low
    if prefix == "ap":
        slack = max(timedelta(days=1), abs(datetime.now(UTC) - search.low) / 10)
        return target.low < search.high + slack and target.high > search.low - slack
    raise ValueError(f"unknown prefix {prefix}")
