"""FHIR date, dateTime and instant values as half-open time ranges, and the search prefixes.

A value of any precision (2024, 2024-03, 2024-03-05, 2024-03-05T10:00:00Z) stands for the
range it covers. Comparisons follow the FHIR R4 search rules for ranges; values without a
time zone are read as UTC. Bounds are integers on one UTC timeline, never datetime
arithmetic, so no valid value (9999-12-31, 0001-01-01T00:00+14:00) can overflow.
"""

from __future__ import annotations

import calendar
import math
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

_DATE_RE = re.compile(
    r"^(?P<y>\d{4})(?:-(?P<m>\d{2})(?:-(?P<d>\d{2})"
    r"(?:T(?P<H>\d{2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?P<f>\.\d+)?)?"
    r"(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?$"
)

PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")

_US_PER_SECOND = 1_000_000
_US_PER_DAY = 86_400 * _US_PER_SECOND
#: The ends of what a Python datetime holds; `low`/`high` are clamped to them.
EARLIEST = datetime.min.replace(tzinfo=UTC)
LATEST = datetime.max.replace(tzinfo=UTC)
_LATEST_US = (LATEST - EARLIEST) // timedelta(microseconds=1)


@dataclass(frozen=True)
class DateRange:
    """[start, end) in microseconds since 0001-01-01T00:00:00Z. A value near either end of
    the calendar may lie past what datetime holds (its bounds stay exact here); an open
    Period end is -inf or inf."""

    start: float
    end: float  # exclusive

    @classmethod
    def spanning(cls, first: DateRange | None, last: DateRange | None) -> DateRange:
        """A Period: from the start of `first` to the end of `last`; open where missing."""
        return cls(first.start if first else -math.inf, last.end if last else math.inf)

    @property
    def low(self) -> datetime:
        """The start as an aware UTC datetime, clamped to what datetime can hold."""
        return _moment(self.start)

    @property
    def high(self) -> datetime:
        """The exclusive end as an aware UTC datetime, clamped to what datetime can hold."""
        return _moment(self.end)


def instant(moment: datetime) -> int:
    """An aware datetime on the DateRange timeline."""
    return (moment - EARLIEST) // timedelta(microseconds=1)


def _moment(position: float) -> datetime:
    if position <= 0:
        return EARLIEST
    if position >= _LATEST_US:
        return LATEST
    return EARLIEST + timedelta(microseconds=int(position))


def _day_start(day: date) -> int:
    return (day.toordinal() - 1) * _US_PER_DAY


def parse_date_range(text: str) -> DateRange:
    """The range a FHIR date/dateTime/instant covers; ValueError if it is not one."""
    match = _DATE_RE.match(text.strip())
    if not match:
        raise ValueError(f"not a FHIR date: {text!r}")
    year = int(match["y"])
    month = int(match["m"] or 1)
    first = date(year, month, int(match["d"] or 1))  # ValueError for year 0, month 13, 02-30
    start = _day_start(first)
    if match["m"] is None:
        return DateRange(start, _day_start(date(year, 12, 31)) + _US_PER_DAY)
    if match["d"] is None:
        last = date(year, month, calendar.monthrange(year, month)[1])
        return DateRange(start, _day_start(last) + _US_PER_DAY)
    if match["H"] is None:
        return DateRange(start, start + _US_PER_DAY)
    hour, minute, second = int(match["H"]), int(match["M"]), int(match["S"] or 0)
    if hour > 23 or minute > 59 or second > 59:
        raise ValueError(f"not a FHIR time: {text!r}")
    offset_minutes = 0
    if match["tz"] and match["tz"] != "Z":
        hours, minutes = int(match["tz"][1:3]), int(match["tz"][4:6])
        if hours > 23 or minutes > 59:
            raise ValueError(f"not a time zone offset: {text!r}")
        offset_minutes = (1 if match["tz"][0] == "+" else -1) * (hours * 60 + minutes)
    fraction = match["f"]
    micro = int(fraction[1:7].ljust(6, "0")) if fraction else 0
    seconds = hour * 3600 + minute * 60 + second - offset_minutes * 60
    low = start + seconds * _US_PER_SECOND + micro
    if fraction:
        step = 1
    elif match["S"] is not None:
        step = _US_PER_SECOND
    else:
        step = 60 * _US_PER_SECOND
    return DateRange(low, low + step)


def split_prefix(text: str) -> tuple[str, str]:
    """('ge', '2020-01-01') from 'ge2020-01-01'; 'eq' when no prefix is given."""
    if len(text) > 2 and text[:2] in PREFIXES and not text[:2].isdigit():
        return text[:2], text[2:]
    return "eq", text


def range_matches(prefix: str, search: DateRange, target: DateRange) -> bool:
    contained = search.start <= target.start and target.end <= search.end
    if prefix == "eq":
        return contained
    if prefix == "ne":
        return not contained
    if prefix == "gt":
        return target.end > search.end
    if prefix == "lt":
        return target.start < search.start
    if prefix == "ge":
        return target.end > search.end or contained
    if prefix == "le":
        return target.start < search.start or contained
    if prefix == "sa":
        return target.start >= search.end
    if prefix == "eb":
        return target.end <= search.start
    if prefix == "ap":
        now = instant(datetime.now(UTC))
        slack = max(_US_PER_DAY, abs(now - search.start) // 10)
        return target.start < search.end + slack and target.end > search.start - slack
    raise ValueError(f"unknown prefix {prefix}")
