"""Builds the sandbox's synthetic practice: `generate(patients, seed)` -> SandboxDataset.

Deterministic by construction: one `random.Random` per patient, seeded from (seed, index),
dates anchored to REFERENCE_DATE, codes only from the curated tables. It never reads the
clock, the global random generator or the network, and never knows about FHIR.
"""

from __future__ import annotations

import random

from facade.sandbox.npi import make_npi
from facade.upstream.drchrono.sandbox.chart import choose_conditions, write_chart
from facade.upstream.drchrono.sandbox.context import (
    REFERENCE_DATE,
    IdSequence,
    Practice,
)
from facade.upstream.drchrono.sandbox.dataset import ENDPOINTS, Record, SandboxDataset
from facade.upstream.drchrono.sandbox.people import SHOWCASE_KINDS, make_patient
from facade.upstream.drchrono.sandbox.reports import write_reports
from facade.upstream.drchrono.sandbox.visits import write_visits

__all__ = ["REFERENCE_DATE", "generate"]

#: First id of each endpoint; magnitudes follow what real DrChrono accounts show.
ID_STARTS: dict[str, int] = {
    "patients": 104_882_700,
    "appointments": 312_456_700,
    "problems": 40_011_200,
    "allergies": 18_220_100,
    "medications": 66_120_400,
    "procedures": 71_230_500,
    "lab_orders": 8_812_300,
    "lab_tests": 7_712_000,
    "lab_results": 90_877_100,
    "lab_documents": 13_459_600,
    "patient_vaccine_records": 5_521_000,
    "vaccine_inventory": 77_100,
    "documents": 221_904_000,
    "care_plans": 3_310_200,
    "implantable_devices": 660_100,
    "patient_risk_assessments": 4_450_100,
    "patient_physical_exams": 4_880_300,
    "patient_interventions": 4_990_500,
    "clinical_note_values": 510_220_000,
}

PRACTICE_NAME = "Riverbend Family Medicine"

DOCTORS: tuple[tuple[str, str, str, str, str], ...] = (
    # first, last, suffix, specialty, job title
    ("Elena", "Whitfield", "MD", "Family Medicine", "Physician"),
    ("Marcus", "Okafor", "DO", "Internal Medicine", "Physician"),
    ("Priya", "Raman", "MD", "Pediatrics", "Physician"),
    ("Daniel", "Kessler", "", "Family Nurse Practitioner", "Nurse Practitioner"),
)

OFFICES: tuple[tuple[str, str, str, str, str], ...] = (
    # name, address, city, state, zip
    ("Riverbend Main Clinic", "400 River Rd\nSuite 200", "Springfield", "IL", "62701"),
    ("Riverbend Westside", "1820 Wabash Ave", "Springfield", "IL", "62704"),
    ("Riverbend Pediatrics", "75 Lincoln Sq", "Springfield", "IL", "62701"),
)

CUSTOM_DEMOGRAPHICS: tuple[tuple[str, str, str], ...] = (
    ("name_suffix", "Name Suffix", "Suffix of the patient's legal name, e.g. Jr., III"),
    ("previous_last_name", "Previous Last Name", "Last name before the most recent change"),
    ("previous_address", "Previous Address", "<street>, <city>, <ST> <zip>"),
    (
        "tribal_affiliation",
        "Tribal Affiliation",
        "Federally recognized tribe the patient is enrolled in",
    ),
)

NOTE_TEMPLATES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Subjective", ("Chief Complaint", "History of Present Illness", "Review of Systems")),
    ("Objective", ("Physical Exam",)),
    ("Assessment", ("Assessment",)),
    ("Plan", ("Plan", "Follow-up")),
)


def make_practice(seed: int) -> Practice:
    rng = random.Random(f"facade-sandbox:{seed}:practice")
    group_id = 100_000 + rng.randint(0, 899_999)
    group_npi = make_npi(rng, "1")
    doctors: list[Record] = []
    users: list[Record] = []
    doctor_user: dict[int, int] = {}
    doctor_id = 525_400 + rng.randint(0, 90)
    user_id = 3_118_000 + rng.randint(0, 90)
    for first, last, suffix, specialty, job_title in DOCTORS:
        doctor_id += rng.randint(1, 40)
        user_id += rng.randint(1, 40)
        doctors.append(
            {
                "id": doctor_id,
                "first_name": first,
                "last_name": last,
                "suffix": suffix,
                "email": f"{first.lower()}.{last.lower()}@riverbend.example.org",
                "specialty": specialty,
                "job_title": job_title,
                "npi_number": make_npi(rng, "1"),
                "group_npi_number": group_npi,
                "practice_group": group_id,
                "practice_group_name": PRACTICE_NAME,
                "timezone": "America/Chicago",
                "office_phone": f"(217) 555-01{rng.randint(10, 99)}",
                "cell_phone": "",
                "home_phone": "",
                "website": "https://riverbend.example.org",
                "country": "US",
                "profile_picture": "",
                "is_account_suspended": False,
            }
        )
        users.append(
            {
                "id": user_id,
                "username": f"{first[0].lower()}{last.lower()}",
                "doctor": doctor_id,
                "practice_group": group_id,
                "is_doctor": True,
                "is_staff": False,
                "plan_type": "Complete",
                "permissions": {},
            }
        )
        doctor_user[doctor_id] = user_id
    staff_user_id = user_id + rng.randint(1, 40)
    users.append(
        {
            "id": staff_user_id,
            "username": "front_desk_1",
            "doctor": doctors[0]["id"],
            "practice_group": group_id,
            "is_doctor": False,
            "is_staff": True,
            "plan_type": "Complete",
            "permissions": {},
        }
    )
    offices: list[Record] = []
    office_id = 559_400 + rng.randint(0, 90)
    for index, (name, address, city, state, zip_code) in enumerate(OFFICES):
        office_id += rng.randint(1, 40)
        rooms = 4 if index == 0 else 3
        offices.append(
            {
                "id": office_id,
                "name": name,
                "doctor": doctors[0]["id"] if index < 2 else doctors[2]["id"],
                "address": address,
                "city": city,
                "state": state,
                "zip_code": zip_code,
                "country": "US",
                "phone_number": f"(217) 555-01{20 + index:02d}",
                "fax_number": f"(217) 555-01{50 + index:02d}",
                "tax_id_number_professional": "",
                "archived": False,
                "start_time": "08:00:00",
                "end_time": "17:00:00",
                "online_scheduling": index == 0,
                "exam_rooms": [
                    {"index": room, "name": f"Exam {room}", "online_scheduling": room == 1}
                    for room in range(1, rooms + 1)
                ],
            }
        )
    custom_demographics: list[Record] = [
        {
            "id": 2101 + position,
            "doctor": doctors[0]["id"],
            "name": name,
            "template_name": template_name,
            "description": description,
            "allowed_values": [],
            "archived": False,
        }
        for position, (template_name, name, description) in enumerate(CUSTOM_DEMOGRAPHICS)
    ]
    note_templates: dict[int, tuple[str, list[tuple[int, str]]]] = {}
    field_id = 880_100
    for position, (section, field_names) in enumerate(NOTE_TEMPLATES):
        fields = []
        for field_name in field_names:
            field_id += 1
            fields.append((field_id, field_name))
        note_templates[91_200 + position] = (section, fields)
    return Practice(
        group_id=group_id,
        group_name=PRACTICE_NAME,
        doctors=doctors,
        offices=offices,
        users=users,
        custom_demographics=custom_demographics,
        doctor_user=doctor_user,
        staff_user_id=staff_user_id,
        note_templates=note_templates,
        sequences={name: IdSequence(start) for name, start in ID_STARTS.items()},
    )


def generate(patients: int = 50, seed: int = 1) -> SandboxDataset:
    """A practice with `patients` patients and their full charts; same arguments, same records.

    The first three patients (lowest ids) are the showcase: an adult woman with every
    demographic and clinical feature, a young child with pediatric vitals, and a deceased
    man. They do not depend on `patients` (only on `seed`).
    """
    practice = make_practice(seed)
    dataset = SandboxDataset(
        practice_group_id=practice.group_id,
        practice_group_name=practice.group_name,
        current_user_id=practice.doctor_user[practice.doctors[0]["id"]],
        records={name: [] for name in ENDPOINTS},
    )
    records = dataset.records
    records["doctors"].extend(practice.doctors)
    records["offices"].extend(practice.offices)
    records["users"].extend(practice.users)
    records["custom_demographics"].extend(practice.custom_demographics)
    charts = []
    for index in range(patients):
        rng = random.Random(f"facade-sandbox:{seed}:patient:{index}")
        showcase = SHOWCASE_KINDS[index] if index < len(SHOWCASE_KINDS) else ""
        chart = make_patient(practice, rng, showcase)
        records["patients"].append(chart.patient)
        choose_conditions(chart)
        write_visits(practice, chart, records)
        write_chart(practice, chart, records)
        charts.append(chart)
    write_reports(charts, records, seed)
    return dataset
