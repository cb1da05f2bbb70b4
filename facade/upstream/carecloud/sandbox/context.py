"""What every part of the CareCloud sandbox generator shares: the reference day, the practice's
time zone, GUIDs and id sequences drawn from a seeded generator, and the practice being filled.

Nothing here reads the real clock or the global random generator, so a (patients, seed) pair
always yields the same records, byte for byte.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

Record = dict[str, Any]

#: Every generated date is relative to this day; charts span about three years before it.
REFERENCE_DATE = date(2026, 6, 1)
#: The business entity's (and every location's) time zone.
PRACTICE_TIME_ZONE = "America/New_York"
PRACTICE_ZONE = ZoneInfo(PRACTICE_TIME_ZONE)


def new_guid(rng: random.Random) -> str:
    """A lowercase uuid4 text drawn from `rng` (CareCloud's GUID ids)."""
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def local_time(day: date, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=PRACTICE_ZONE)


def iso(moment: datetime) -> str:
    """ISO 8601 with the practice's offset, as CareCloud writes timestamps."""
    return moment.astimezone(PRACTICE_ZONE).isoformat(timespec="seconds")


def years_before(day: date, years: float) -> date:
    return day - timedelta(days=round(years * 365.25))


def age_in_months(born: date, on: date) -> int:
    months = (on.year - born.year) * 12 + on.month - born.month
    return months - (1 if on.day < born.day else 0)


class IdSequence:
    """Ascending integer ids with small gaps, as a busy production database hands them out."""

    def __init__(self, start: int) -> None:
        self._last = start

    def next(self, rng: random.Random) -> int:
        self._last += rng.randint(1, 9)
        return self._last


@dataclass
class Practice:
    """The business entity's fixed records and the sequence of clinical row ids."""

    business_entity: Record
    user: Record
    providers: list[Record]
    locations: list[Record]
    #: Clinical row ids are integers unique sandbox-wide (problems, meds, vitals, ...).
    rows: IdSequence = field(default_factory=lambda: IdSequence(5_100_000))
    insurances: IdSequence = field(default_factory=lambda: IdSequence(880_000))

    def provider(self, specialty: str) -> Record:
        return next(p for p in self.providers if p["specialty"]["name"] == specialty)
