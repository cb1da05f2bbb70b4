"""Synthetic patients for the sandbox: demographics, contacts, insurance, custom demographics.

Names and places come from the curated tables; phone numbers use the fictional 555-01xx
exchange and e-mail addresses the reserved example.* domains. It never produces a real
person's identifiers (SSNs stay empty).
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any

from facade.sandbox.codes import load_table, names, places
from facade.upstream.drchrono.sandbox.context import (
    REFERENCE_DATE,
    Chart,
    Practice,
    days_before,
    timestamp,
    years_before,
)
from facade.upstream.drchrono.sandbox.dataset import Record

#: The first patients of every dataset, in id order.
SHOWCASE_KINDS: tuple[str, ...] = ("adult", "child", "deceased")

INSURANCE_KEYS: tuple[str, ...] = (
    "insurance_company",
    "insurance_payer_id",
    "insurance_plan_name",
    "insurance_plan_type",
    "insurance_id_number",
    "insurance_group_name",
    "insurance_group_number",
    "insurance_claim_office_number",
    "patient_relationship_to_subscriber",
    "subscriber_first_name",
    "subscriber_middle_name",
    "subscriber_last_name",
    "subscriber_suffix",
    "subscriber_social_security",
    "subscriber_gender",
    "subscriber_address",
    "subscriber_city",
    "subscriber_zip_code",
    "subscriber_state",
    "photo_front",
    "photo_back",
)

RACES = (
    "white",
    "white",
    "white",
    "black",
    "asian",
    "indian",
    "hawaiian",
    "other",
    "declined",
    "blank",
)
LANGUAGES = ("eng",) * 12 + (
    "spa",
    "spa",
    "spa",
    "zho",
    "fra",
    "ita",
    "jpn",
    "por",
    "rus",
    "other",
    "unknown",
    "declined",
    "blank",
)
RELATIONS = ("Spouse", "Mother", "Father", "Daughter", "Son", "Sister", "Brother", "Friend")
EMPLOYERS = (
    "Springfield Public Schools",
    "Memorial Health",
    "State of Illinois",
    "Horace Mann",
    "Self-employed",
    "",
)


def empty_insurance() -> dict[str, Any]:
    insurance: dict[str, Any] = dict.fromkeys(INSURANCE_KEYS, "")
    insurance["is_subscriber_the_patient"] = True
    insurance["subscriber_date_of_birth"] = None
    insurance["subscriber_country"] = "US"
    return insurance


def make_insurance(rng: random.Random, payer: dict[str, Any], employer: str) -> dict[str, Any]:
    insurance = empty_insurance()
    insurance.update(
        insurance_company=payer["display"],
        insurance_payer_id=payer["insurance_payer_id"],
        insurance_plan_name=payer["insurance_plan_name"],
        insurance_plan_type=payer["insurance_plan_type"],
        insurance_id_number=f"{rng.choice('UWXYZ')}{rng.randint(10**9, 10**10 - 1)}",
        insurance_group_name=employer.upper()
        if payer["insurance_plan_type"] in ("12", "13", "HM")
        else "",
        insurance_group_number=str(rng.randint(1_000_000, 9_999_999)) if employer else "",
    )
    return insurance


def phone(rng: random.Random, area_code: str) -> str:
    return f"({area_code}) 555-01{rng.randint(0, 99):02d}"


def street_address(rng: random.Random) -> str:
    streets = places("street")
    suffixes = places("street_suffix")
    return f"{rng.randint(10, 9899)} {rng.choice(streets)['code']} {rng.choice(suffixes)['code']}"


def make_patient(practice: Practice, rng: random.Random, showcase: str) -> Chart:
    """One patient record (verbose fields included) and the chart state that goes with it."""
    cities = places("city")
    payers = load_table("payers").rows
    if showcase == "adult":
        sex, age, race, ethnicity, language = "female", 34.4, "white", "hispanic", "spa"
    elif showcase == "child":
        sex, age, race, ethnicity, language = "male", 4.2, "black", "not_hispanic", "eng"
    elif showcase == "deceased":
        sex, age, race, ethnicity, language = "male", 79.6, "declined", "declined", "eng"
    else:
        sex = rng.choice(("female", "male"))
        age = rng.choice(
            (rng.uniform(0.3, 17.9), rng.uniform(18, 64), rng.uniform(18, 64), rng.uniform(65, 92))
        )
        race = rng.choice(RACES)
        ethnicity = rng.choices(("not_hispanic", "hispanic", "declined", "blank"), (70, 18, 6, 6))[
            0
        ]
        language = (
            "spa" if ethnicity == "hispanic" and rng.random() < 0.5 else rng.choice(LANGUAGES)
        )
    birth_date = years_before(REFERENCE_DATE, age) - timedelta(days=rng.randint(0, 60))
    given = names("given", sex)
    family = names("family")
    first_name = "Maria" if showcase == "adult" else rng.choice(given)
    last_name = "Garcia" if showcase == "adult" else rng.choice(family)
    middle_name = rng.choice(given)[0] if rng.random() < 0.6 else ""
    place = cities[0] if showcase else rng.choice(cities)
    area = place["area_code"]
    first_day = max(birth_date + timedelta(days=3), days_before(REFERENCE_DATE, 700, 1800, rng))
    if showcase == "child":
        first_day = birth_date + timedelta(days=10)
    if showcase in ("adult", "deceased"):
        first_day = days_before(REFERENCE_DATE, 1700, 1800, rng)
    status = "A"
    date_of_death: str | None = None
    last_day = REFERENCE_DATE
    if showcase == "deceased" or (age > 70 and rng.random() < 0.12):
        status = "D"
        death = days_before(REFERENCE_DATE, 60, 400, rng)
        date_of_death = death.isoformat()
        last_day = death
    elif rng.random() < 0.06:
        status = "I"
    doctors = practice.doctors
    if showcase == "child" or (age < 18 and rng.random() < 0.7):
        doctor = doctors[2]
    else:
        doctor = doctors[0] if showcase else rng.choice(doctors)
    office = practice.offices[2] if doctor is doctors[2] else rng.choice(practice.offices[:2])
    adult = age >= 18
    parent_name = f"{rng.choice(names('given', 'female'))} {last_name}"
    employer = rng.choice(EMPLOYERS) if adult and age < 66 else ""
    created_at = timestamp(first_day - timedelta(days=rng.randint(1, 14)), rng)
    patient: Record = {
        "id": practice.next_id("patients", rng),
        "chart_id": f"{last_name[:2].upper()}{first_name[:2].upper()}{rng.randint(1, 999_999):06d}",
        "first_name": first_name,
        "middle_name": middle_name,
        "last_name": last_name,
        "nick_name": first_name[:3] if rng.random() < 0.08 else "",
        "date_of_birth": birth_date.isoformat(),
        "gender": "Female" if sex == "female" else "Male",
        "gender_identity_code": "",
        "gender_identity_description": "",
        "pronouns": "",
        "race": race,
        "race_subcategories": [],
        "ethnicity": ethnicity,
        "preferred_language": language,
        "patient_status": status,
        "date_of_death": date_of_death,
        "address": street_address(rng)
        + (f"\nApt {rng.randint(1, 40)}" if rng.random() < 0.2 else ""),
        "city": place["city"],
        "state": place["state"],
        "zip_code": place["zip_code"],
        "email": f"{first_name.lower()}.{last_name.lower()}{rng.randint(1, 99)}@example.com"
        if rng.random() < 0.75 or showcase
        else "",
        "home_phone": phone(rng, area) if rng.random() < 0.5 or showcase else "",
        "cell_phone": phone(rng, area) if rng.random() < 0.85 or showcase else "",
        "office_phone": phone(rng, area) if adult and rng.random() < 0.15 else "",
        "emergency_contact_name": "",
        "emergency_contact_phone": "",
        "emergency_contact_relation": "",
        "responsible_party_name": "",
        "responsible_party_relation": "",
        "responsible_party_phone": "",
        "responsible_party_email": "",
        "employer": employer,
        "employer_address": "",
        "employer_city": "",
        "employer_state": "",
        "employer_zip_code": "",
        "social_security_number": "",
        "doctor": doctor["id"],
        "offices": [office["id"]],
        "primary_care_physician": "",
        "referring_source": "",
        "default_pharmacy": "",
        "preferred_pharmacies": [],
        "disable_sms_messages": False,
        "copay": "",
        "patient_payment_profile": "",
        "patient_photo": "",
        "patient_photo_date": None,
        "date_of_first_appointment": None,
        "date_of_last_appointment": None,
        "medication_history_consent": False,
        "created_at": created_at,
        "updated_at": created_at,
        # verbose-only
        "primary_insurance": empty_insurance(),
        "secondary_insurance": empty_insurance(),
        "tertiary_insurance": empty_insurance(),
        "auto_accident_insurance": empty_insurance(),
        "workers_comp_insurance": empty_insurance(),
        "referring_doctor": {
            "first_name": "",
            "last_name": "",
            "npi": "",
            "specialty": "",
            "phone": "",
            "fax": "",
            "email": "",
            "address": "",
        },
        "custom_demographics": [],
        "patient_flags": [],
        "patient_flags_attached": [],
    }
    if showcase or rng.random() < 0.7:
        relation = "Mother" if not adult else rng.choice(RELATIONS)
        contact_last = last_name if relation != "Friend" else rng.choice(family)
        patient.update(
            emergency_contact_name=parent_name
            if not adult
            else f"{rng.choice(given)} {contact_last}",
            emergency_contact_phone=phone(rng, area),
            emergency_contact_relation=relation,
        )
    if not adult:
        patient.update(
            responsible_party_name=parent_name,
            responsible_party_relation="Mother",
            responsible_party_phone=patient["emergency_contact_phone"] or phone(rng, area),
            responsible_party_email=f"{parent_name.split()[0].lower()}.{last_name.lower()}@example.com",
        )
    if showcase or rng.random() < 0.85:
        plans = [
            row for row in payers if (row["insurance_plan_type"] in ("MB", "16")) == (age >= 65)
        ]
        payer = payers[2] if showcase == "adult" else rng.choice(plans)
        patient["primary_insurance"] = make_insurance(rng, payer, employer)
        patient["patient_payment_profile"] = "Insurance"
        patient["copay"] = rng.choice(("0.00", "20.00", "25.00", "40.00"))
        if not adult:
            guardian_first, guardian_last = parent_name.split(" ", 1)
            patient["primary_insurance"].update(
                is_subscriber_the_patient=False,
                patient_relationship_to_subscriber="19",
                subscriber_first_name=guardian_first,
                subscriber_last_name=guardian_last,
                subscriber_gender="Female",
                subscriber_date_of_birth=years_before(birth_date, 29).isoformat(),
                subscriber_address=patient["address"],
                subscriber_city=patient["city"],
                subscriber_state=patient["state"],
                subscriber_zip_code=patient["zip_code"],
            )
        if showcase in ("adult", "deceased") or rng.random() < 0.15:
            secondary = payers[8] if showcase == "adult" else rng.choice(payers)
            patient["secondary_insurance"] = make_insurance(rng, secondary, "")
    else:
        patient["patient_payment_profile"] = rng.choice(("Cash", ""))
    _add_custom_demographics(practice, rng, patient, showcase, sex, adult)
    if showcase == "adult":
        patient["middle_name"] = "Elena"
        patient["nick_name"] = ""
    chart = Chart(
        rng=rng,
        patient=patient,
        birth_date=birth_date,
        sex=sex,
        doctor=int(doctor["id"]),
        office=office,
        first_day=first_day,
        last_day=last_day,
        showcase=showcase,
    )
    return chart


#: Federally recognized tribes (Bureau of Indian Affairs list), by the names they use.
_TRIBES = (
    "Cherokee Nation",
    "Navajo Nation",
    "Muscogee (Creek) Nation",
    "Chickasaw Nation",
    "Oneida Nation",
    "Pueblo of Zuni",
)


def _add_custom_demographics(
    practice: Practice, rng: random.Random, patient: Record, showcase: str, sex: str, adult: bool
) -> None:
    values: list[tuple[str, str]] = []
    if showcase == "deceased" or (sex == "male" and adult and rng.random() < 0.05):
        values.append(("name_suffix", "Jr." if showcase else rng.choice(("Jr.", "Sr.", "III"))))
    if showcase == "adult" or (sex == "female" and adult and rng.random() < 0.12):
        values.append(
            ("previous_last_name", "Ramirez" if showcase else rng.choice(names("family")))
        )
    if showcase == "adult" or (adult and rng.random() < 0.1):
        place = rng.choice(places("city"))
        previous = f"{street_address(rng)}, {place['city']}, {place['state']} {place['zip_code']}"
        values.append(("previous_address", previous))
    if showcase == "adult" or patient.get("race") == "indian":
        tribe = "Cherokee Nation" if showcase else rng.choice(_TRIBES)
        values.append(("tribal_affiliation", tribe))
    updated = patient["created_at"]
    patient["custom_demographics"] = [
        {"field_type": practice.custom_demographic_id(name), "value": value, "updated_at": updated}
        for name, value in values
    ]


def dates_between(rng: random.Random, first: date, last: date, count: int) -> list[date]:
    """`count` distinct-ish sorted days in [first, last]."""
    span = max((last - first).days, 1)
    return sorted(first + timedelta(days=rng.randint(0, span)) for _ in range(count))
