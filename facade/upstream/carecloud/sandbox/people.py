"""Synthetic CareCloud patients: demographics, contacts, insurances and their eligibility.

Names and places come from the curated tables, phone numbers use the fictional 555-01xx
exchange and e-mail addresses the reserved example.com domain. It never produces a real
person's identifiers (no SSN at all) and never reads the clock.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import cache
from typing import Any

from facade.sandbox.codes import load_table, names, places
from facade.upstream.carecloud.sandbox.context import (
    REFERENCE_DATE,
    Practice,
    Record,
    age_in_months,
    iso,
    local_time,
    new_guid,
    years_before,
)
from facade.upstream.carecloud.sandbox.practice import PRACTICE_CITY, phone

#: The first patients of every dataset, in order.
SHOWCASE_KINDS: tuple[str, ...] = ("adult", "child", "deceased")

RACES = ("white",) * 5 + ("black", "black", "asian", "indian", "hawaiian", "other", "declined")
ETHNICITIES = ("not_hispanic",) * 6 + ("hispanic", "hispanic", "declined")
LANGUAGES = ("eng",) * 12 + ("spa", "spa", "zho", "fra", "por", "rus")
#: HL7 v3 RoleCode personal relationships an emergency contact is recorded with.
RELATIONSHIPS = (
    ("SPS", "Spouse"),
    ("MTH", "Mother"),
    ("FTH", "Father"),
    ("DAU", "Daughter"),
    ("SON", "Son"),
    ("SIS", "Sister"),
    ("BRO", "Brother"),
    ("FRND", "Friend"),
)
#: Plan benefits /eligibility reports (dollars); payers come from the curated table.
COPAYS = (20, 25, 30, 35, 40)
DEDUCTIBLES = (500, 1000, 1500, 2500, 3000)


@dataclass
class Person:
    """One patient's record and what the chart generator needs to know about them."""

    record: Record
    rng: random.Random
    kind: str
    sex: str
    born: date
    #: The last day anything can happen in the chart (death, or the reference day).
    last_day: date
    provider: Record
    location: Record
    conditions: list[dict[str, Any]] = field(default_factory=list)
    height_in: int | None = None

    @property
    def age_months(self) -> int:
        return age_in_months(self.born, self.last_day)

    @property
    def is_child(self) -> bool:
        return self.age_months < 18 * 12


@cache
def _billable_payers() -> tuple[dict[str, Any], ...]:
    """Payers with a clearinghouse payer id: only those can be billed and checked."""
    return tuple(row for row in load_table("payers").rows if row["insurance_payer_id"])


def _code(table: str, key: str, value_field: str) -> str:
    return str(load_table(table).row(key)[value_field])


def street(rng: random.Random) -> str:
    name = rng.choice(places("street"))["code"]
    suffix = rng.choice(places("street_suffix"))["code"]
    return f"{rng.randint(100, 9899)} {name} {suffix}"


def _address(rng: random.Random, *, local: bool, primary: bool) -> Record:
    if local:
        city, state, zip_code = PRACTICE_CITY
        area = "614"
    else:
        place = rng.choice(places("city"))
        city, state, zip_code, area = (
            place["city"],
            place["state"],
            place["zip_code"],
            place["area_code"],
        )
    return {
        "line1": street(rng),
        "line2": rng.choice(("", "", "", f"Apt {rng.randint(1, 40)}")),
        "city": city,
        "state": state,
        "zip_code": zip_code,
        "country_name": "United States",
        "is_primary": primary,
        "_area_code": area,
    }


def member_id(rng: random.Random) -> str:
    """A member id as the payer prints it on the card."""
    return f"{rng.choice('HKMWXZ')}{rng.randint(10**8, 10**9 - 1)}"


def make_insurance(
    practice: Practice,
    rng: random.Random,
    priority: int,
    subscriber: Record,
    relationship: str,
    start: date,
) -> tuple[Record, Record]:
    """One insurance (`priority` 1 is primary) and its plan benefits, for /eligibility."""
    payer = rng.choice(_billable_payers())
    insurance_id = practice.insurances.next(rng)
    terminated = priority == 2 and rng.random() < 0.3
    insurance = {
        "id": insurance_id,
        "priority": priority,
        "payer_id": payer["insurance_payer_id"],
        "payer_name": payer["display"],
        "member_id": member_id(rng),
        "group_number": f"{rng.randint(10**5, 10**6 - 1)}",
        "plan_name": payer["insurance_plan_name"],
        "effective_date": start.isoformat(),
        "termination_date": (REFERENCE_DATE - timedelta(days=rng.randint(30, 300))).isoformat()
        if terminated
        else None,
        "relationship_to_insured_code": relationship,
        "subscriber": subscriber,
    }
    benefits = {
        "copay": {"office_visit": rng.choice(COPAYS)},
        "deductible": {"individual": (deductible := rng.choice(DEDUCTIBLES))},
        "deductible_met": rng.randint(0, deductible),
    }
    return insurance, benefits


def _birth_date(rng: random.Random, kind: str) -> date:
    if kind == "adult":
        return years_before(REFERENCE_DATE, 58.4)
    if kind == "child":
        return REFERENCE_DATE - timedelta(days=30 * 30 + 11)
    if kind == "deceased":
        return years_before(REFERENCE_DATE, 81.7)
    if rng.random() < 0.18:
        return REFERENCE_DATE - timedelta(days=rng.randint(200, 17 * 365))
    return REFERENCE_DATE - timedelta(days=rng.randint(18 * 365 + 30, 92 * 365))


def make_patient(
    practice: Practice,
    rng: random.Random,
    index: int,
    kind: str,
    benefits: dict[int, Record],
) -> Person:
    """One patient; `kind` is a showcase kind or "" for a random one."""
    born = _birth_date(rng, kind)
    sex = {"adult": "female", "child": "male", "deceased": "male"}.get(
        kind, rng.choice(("female", "male"))
    )
    first = rng.choice(names("given", sex))
    last = rng.choice(names("family"))
    deceased_on = REFERENCE_DATE - timedelta(days=40) if kind == "deceased" else None
    last_day = deceased_on or REFERENCE_DATE
    child = age_in_months(born, last_day) < 18 * 12
    if child:
        provider = practice.provider("Pediatrics")
    elif kind == "adult":
        provider = practice.provider("Family Medicine")
    else:
        provider = rng.choice(
            [p for p in practice.providers if p["specialty"]["name"] != "Pediatrics"]
        )
    location = next(
        place for place in practice.locations if place["id"] == provider["location_ids"][0]
    )
    local = kind != "" or rng.random() < 0.8
    addresses = [_address(rng, local=local, primary=True)]
    if kind == "adult":
        addresses.append(_address(rng, local=False, primary=False))
    area = addresses[0].pop("_area_code")
    for extra in addresses[1:]:
        extra.pop("_area_code")
    phones = [{"phone_number": phone(rng, area), "phone_type_code": "M", "is_primary": True}]
    if kind == "adult" or rng.random() < 0.3:
        phones.append(
            {"phone_number": phone(rng, area), "phone_type_code": "H", "is_primary": False}
        )
    race = "black" if kind == "adult" else rng.choice(RACES)
    ethnicity = "not_hispanic" if kind == "adult" else rng.choice(ETHNICITIES)
    language = "eng" if kind else rng.choice(LANGUAGES)
    registered = max(born, REFERENCE_DATE - timedelta(days=rng.randint(3 * 365, 6 * 365)))
    guardian_first = rng.choice(names("given", "female"))
    if child:
        subscriber = {
            "first_name": guardian_first,
            "last_name": last,
            "date_of_birth": years_before(born, rng.uniform(24, 38)).isoformat(),
        }
        relationship = "19"
    else:
        subscriber = {"first_name": first, "last_name": last, "date_of_birth": born.isoformat()}
        relationship = "18"
    insurances = []
    for priority in (1, 2) if kind == "adult" or rng.random() < 0.15 else (1,):
        insurance, plan_benefits = make_insurance(
            practice, rng, priority, subscriber, relationship, registered
        )
        insurances.append(insurance)
        benefits[insurance["id"]] = plan_benefits
    if rng.random() < 0.05 and not kind:
        insurances = []
    relation_code, _ = RELATIONSHIPS[1] if child else rng.choice(RELATIONSHIPS)
    contact_first = guardian_first if child else rng.choice(names("given"))
    emergency_contact = (
        {
            "name": f"{contact_first} {last}",
            "relationship_code": relation_code,
            "phone_number": phone(rng, area),
        }
        if kind or rng.random() < 0.7
        else None
    )
    created = local_time(registered, rng.randint(8, 16), rng.randint(0, 59))
    updated = local_time(
        min(last_day, registered + timedelta(days=rng.randint(0, 700))),
        rng.randint(8, 16),
        rng.randint(0, 59),
    )
    active_insurance = any(
        i["termination_date"] is None or i["termination_date"] > REFERENCE_DATE.isoformat()
        for i in insurances
    )
    status = "I" if deceased_on or (not kind and rng.random() < 0.06) else "A"
    record: Record = {
        "id": new_guid(rng),
        "chart_number": f"CC-{index + 1:06d}",
        "first_name": first,
        "middle_name": rng.choice(names("given", sex))
        if kind == "adult" or rng.random() < 0.5
        else "",
        "last_name": last,
        "suffix": "Sr."
        if kind == "deceased"
        else ("Jr." if not kind and rng.random() < 0.03 else ""),
        "preferred_name": (first[:3] if kind == "adult" else ""),
        "date_of_birth": born.isoformat(),
        "gender_code": "F" if sex == "female" else "M",
        "birth_sex": "F" if sex == "female" else "M",
        "race_code": _code("omb_race", race, "omb"),
        "ethnicity_code": _code("omb_ethnicity", ethnicity, "omb"),
        "language_code": _code("languages", language, "bcp47"),
        "status": status,
        "deceased_at": iso(local_time(deceased_on, 4, 12)) if deceased_on else None,
        "email": f"{first.lower()}.{last.lower()}{index}@example.com",
        "addresses": addresses,
        "phones": phones,
        "primary_provider_id": provider["id"],
        "primary_location_id": location["id"],
        "insurances": insurances,
        "eligibility": {
            "status": "active" if active_insurance else ("inactive" if insurances else "unknown"),
            "checked_at": iso(local_time(last_day - timedelta(days=rng.randint(1, 20)), 6, 0)),
        },
        "emergency_contact": emergency_contact,
        "created_at": iso(created),
        "updated_at": iso(max(created, updated)),
    }
    return Person(
        record=record,
        rng=rng,
        kind=kind,
        sex=sex,
        born=born,
        last_day=last_day,
        provider=provider,
        location=location,
    )
