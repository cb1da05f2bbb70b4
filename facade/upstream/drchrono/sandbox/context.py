"""What every part of the sandbox generator shares: the reference clock, id sequences,
the practice being filled and one patient's working state.

Nothing here reads the real clock or the global random generator; all randomness comes from
a `random.Random` handed in, so a (patients, seed) pair always yields the same records.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from facade.upstream.drchrono.sandbox.dataset import Record

#: Every generated date and timestamp is relative to this day; records span ~5 years before it.
REFERENCE_DATE = date(2026, 6, 1)
#: The last day anything in the generated practice changed: every record is created, updated
#: and moved from status to status by then, a future visit booked included. A sandbox's clock
#: starts on the reference date, so no record is stamped with a change in its future (no
#: vendor does that, and a mirror rightly keeps the later-stamped of two versions).
LAST_CHANGE_DATE = REFERENCE_DATE - timedelta(days=1)


def timestamp(day: date, rng: random.Random, first_hour: int = 8, last_hour: int = 17) -> str:
    """A naive local `YYYY-MM-DDTHH:MM:SS`, as DrChrono writes them."""
    hour = rng.randint(first_hour, last_hour)
    return f"{day.isoformat()}T{hour:02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}"


def days_before(day: date, low: int, high: int, rng: random.Random) -> date:
    return day - timedelta(days=rng.randint(low, high))


def years_before(day: date, years: float) -> date:
    return day - timedelta(days=round(years * 365.25))


class IdSequence:
    """Ascending ids with small random gaps, so ids look like a busy production database."""

    def __init__(self, start: int) -> None:
        self._last = start

    def next(self, rng: random.Random) -> int:
        self._last += rng.randint(1, 17)
        return self._last


@dataclass
class Practice:
    """The practice group's fixed records, and the ids the clinical records point at."""

    group_id: int
    group_name: str
    doctors: list[Record]
    offices: list[Record]
    users: list[Record]
    custom_demographics: list[Record]
    #: user id of each doctor, by doctor id
    doctor_user: dict[int, int]
    staff_user_id: int
    #: clinical note template id -> (name, [(field id, field name)])
    note_templates: dict[int, tuple[str, list[tuple[int, str]]]]
    sequences: dict[str, IdSequence] = field(default_factory=dict)

    def next_id(self, endpoint: str, rng: random.Random) -> int:
        return self.sequences[endpoint].next(rng)

    def custom_demographic_id(self, template_name: str) -> int:
        for definition in self.custom_demographics:
            if definition["template_name"] == template_name:
                return int(definition["id"])
        raise KeyError(template_name)


@dataclass
class Chart:
    """One patient while their chart is being written: who they are and what they have."""

    rng: random.Random
    patient: Record
    birth_date: date
    sex: str  # "male" | "female" (sex for clinical plausibility; gender field may say Other)
    doctor: int
    office: Record
    #: first day the practice saw the patient; last day anything can happen (death or reference)
    first_day: date
    last_day: date
    showcase: str = ""  # "", "adult", "child", "deceased"
    #: ICD-10-CM rows of this patient's problems
    conditions: list[dict[str, Any]] = field(default_factory=list)
    #: completed appointments, oldest first
    visits: list[Record] = field(default_factory=list)
    smoking_status: str = ""

    def age_on(self, day: date) -> float:
        return (day - self.birth_date).days / 365.25

    def age_months_on(self, day: date) -> int:
        return int(self.age_on(day) * 12)

    @property
    def patient_id(self) -> int:
        return int(self.patient["id"])
