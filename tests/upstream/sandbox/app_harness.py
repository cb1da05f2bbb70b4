"""A tiny hand-built practice and a client for driving the DrChrono sandbox app in tests.

Every record here exists to make some filter keep or drop it; the comments say which.
It must never depend on the synthetic data generator.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import httpx

from facade.upstream.drchrono.sandbox.app import create_sandbox_app
from facade.upstream.drchrono.sandbox.dataset import Record, SandboxDataset
from facade.upstream.drchrono.sandbox.state import ManualClock, SandboxLimits, SandboxState

BASE_URL = "http://drchrono.sandbox"
#: A Monday morning, 10:00:00 UTC.
START = datetime(2024, 6, 3, 10, 0, 0, tzinfo=UTC)
#: Most tests do not want the 10-per-second burst limit; the limit tests ask for it.
NO_BURST = SandboxLimits(burst_per_second=None)


def patient_record(pid: int, first: str, last: str, **fields: object) -> Record:
    record: Record = {
        "id": pid,
        "chart_id": f"{last[:2].upper()}{first[:2].upper()}{pid:06d}",
        "first_name": first,
        "middle_name": "",
        "last_name": last,
        "date_of_birth": "1980-01-01",
        "gender": "Female",
        "race": "white",
        "ethnicity": "not_hispanic",
        "preferred_language": "eng",
        "email": "",
        "doctor": 10,
        "patient_status": "A",
        "date_of_death": None,
        "address": "1 Main St",
        "city": "Austin",
        "state": "TX",
        "zip_code": "78701",
        "updated_at": "2023-01-01T00:00:00",
        "primary_insurance": {"insurance_company": "Cigna", "photo_front": "/files/cards/1.png"},
        "secondary_insurance": {"insurance_company": ""},
        "tertiary_insurance": {"insurance_company": ""},
        "auto_accident_insurance": {},
        "workers_comp_insurance": {},
        "referring_doctor": {"first_name": ""},
        "custom_demographics": [],
        "patient_flags": [],
        "patient_flags_attached": [],
    }
    record.update(fields)
    return record


def tiny_dataset() -> SandboxDataset:
    """Two doctors, two offices, four patients (two active, inactive, deceased) and charts."""
    return SandboxDataset(
        practice_group_id=1,
        practice_group_name="Tiny Family Practice",
        current_user_id=900,
        records={
            "doctors": [
                {
                    "id": 10,
                    "first_name": "Ada",
                    "last_name": "Lovelace",
                    "npi_number": "1234567893",
                },
                {"id": 11, "first_name": "Alan", "last_name": "Turing", "npi_number": ""},
            ],
            "offices": [
                {"id": 20, "name": "Main", "doctor": 10, "archived": False, "online_timeslots": []},
                {
                    "id": 21,
                    "name": "Old annex",
                    "doctor": 10,
                    "archived": True,
                    "online_timeslots": [],
                },
            ],
            "users": [
                {"id": 900, "username": "ada", "doctor": 10, "is_doctor": True, "is_staff": False},
                {
                    "id": 901,
                    "username": "frontdesk",
                    "doctor": 10,
                    "is_doctor": False,
                    "is_staff": True,
                },
            ],
            "custom_demographics": [
                {"id": 30, "doctor": 10, "name": "Preferred pharmacy note", "archived": False},
                {"id": 31, "doctor": 11, "name": "Veteran", "archived": False},
                {"id": 32, "doctor": 10, "name": "Old field", "archived": True},
            ],
            "patients": [
                patient_record(
                    100,
                    "Jane",
                    "Doe",
                    date_of_birth="1978-04-12",
                    email="Jane.Doe@example.com",
                    updated_at="2024-03-05T10:41:09",
                ),
                patient_record(
                    101,
                    "John",
                    "Smithson",
                    gender="Male",
                    race="black",
                    ethnicity="hispanic",
                    preferred_language="spa",
                    doctor=11,
                ),
                patient_record(102, "Mary", "Major", patient_status="I"),
                patient_record(103, "Old", "Timer", patient_status="D", date_of_death="2022-02-02"),
            ],
            "appointments": [
                {
                    "id": "500",
                    "patient": 100,
                    "doctor": 10,
                    "office": 20,
                    "scheduled_time": "2024-03-05T09:30:00",
                    "status": "Complete",
                    "deleted_flag": False,
                    "updated_at": "2024-03-05T10:41:09",
                    "vitals": {"height": 65.0, "height_units": "inches", "pulse": 74},
                    "clinical_note": {"locked": True, "pdf": "/files/clinical_notes/500.pdf"},
                    "custom_vitals": [],
                    "custom_fields": [],
                    "extended_updated_at": "2024-03-05T10:41:09",
                    "reminders": [],
                    "status_transitions": [],
                },
                {
                    "id": "501",
                    "patient": 101,
                    "doctor": 11,
                    "office": 21,
                    "scheduled_time": "2024-05-01T08:00:00",
                    "status": "Arrived",
                    "deleted_flag": False,
                    "updated_at": "2024-05-01T08:05:00",
                },
                {
                    # Scheduled before 501 but with a larger id: ordering is by time, not id.
                    "id": "499",
                    "patient": 100,
                    "doctor": 10,
                    "office": 20,
                    "scheduled_time": "2024-06-01T14:00:00",
                    "status": "Confirmed",
                    "deleted_flag": False,
                    "updated_at": "2024-05-20T12:00:00",
                },
                {
                    "id": "502",
                    "patient": 100,
                    "doctor": 10,
                    "office": 20,
                    "scheduled_time": "2024-03-06T09:30:00",
                    "status": "Cancelled",
                    "deleted_flag": True,
                    "updated_at": "2024-03-06T09:00:00",
                },
            ],
            "problems": [
                {"id": 40, "patient": 100, "name": "Essential hypertension", "icd_code": "I10"},
                {"id": 41, "patient": 101, "name": "Asthma", "icd_code": "J45.909"},
            ],
            "allergies": [
                {"id": 50, "patient": 100, "description": "Drug: Penicillin", "rxnorm": "7980"},
                {
                    "id": 51,
                    "patient": 101,
                    "description": "Food: Peanut",
                    "snomed_code": "91935009",
                },
            ],
            "medications": [
                {"id": 60, "patient": 100, "name": "Lisinopril 10 MG", "rxnorm": "314076"},
                {"id": 61, "patient": 101, "name": "Albuterol", "rxnorm": "745679"},
            ],
            "procedures": [
                {
                    "id": 70,
                    "patient": 100,
                    "doctor": 10,
                    "appointment": 500,
                    "service_date": "2024-03-05",
                },
                {
                    "id": 71,
                    "patient": 101,
                    "doctor": 11,
                    "appointment": 501,
                    "service_date": "2024-05-01",
                },
            ],
            "lab_orders": [
                {"id": 80, "patient": 100, "doctor": 10, "timestamp": "2024-03-04T08:00:00"},
                {"id": 81, "patient": 101, "doctor": 11, "timestamp": "2024-05-01T08:00:00"},
            ],
            "lab_orders_summary": [
                {"id": 80, "patient": 100, "doctor": 10, "updated_at": "2024-03-05T09:00:00"},
                {"id": 81, "patient": 101, "doctor": 11, "updated_at": "2024-05-02T09:00:00"},
            ],
            "lab_tests": [
                {"id": 85, "lab_order": 80, "code": "CMP"},
                {"id": 86, "lab_order": 81, "code": "CBC"},
            ],
            "lab_results": [
                {
                    "id": 90,
                    "lab_order": 80,
                    "lab_test": 85,
                    "observation_code": "2345-7",
                    "observation_description": "Glucose",
                    "value": "112",
                    "value_is_numeric": True,
                    "unit": "mg/dL",
                    "abnormal_status": "H",
                    "specimen_received": "2024-03-04T08:10:00",
                },
                {"id": 91, "lab_order": 81, "lab_test": 86, "value": "Negative"},
            ],
            "patient_vaccine_records": [
                {
                    "id": 95,
                    "patient": 100,
                    "doctor": 10,
                    "name": "COVID-19",
                    "cvx_code": "208",
                    "administered_start": "2021-04-01T10:00:00",
                    "updated_at": "2021-04-01T10:00:00",
                },
                {
                    "id": 96,
                    "patient": 101,
                    "doctor": 11,
                    "name": "Influenza",
                    "cvx_code": "140",
                    "administered_start": "2024-05-01T08:30:00",
                    "updated_at": "2024-05-01T08:30:00",
                },
            ],
            "clinical_notes": [
                {
                    "id": 800,
                    "appointment": "500",
                    "patient": 100,
                    "archived": False,
                    "updated_at": "2024-03-05T10:40:00",
                    "clinical_note_sections": [
                        {"name": "HPI", "values": [{"clinical_note_field": 1, "value": "Headache"}]}
                    ],
                },
                {
                    "id": 801,
                    "appointment": "501",
                    "patient": 101,
                    "archived": False,
                    "updated_at": "2024-05-01T09:00:00",
                    "clinical_note_sections": [],
                },
                {
                    "id": 802,
                    "appointment": "502",
                    "patient": 100,
                    "archived": True,
                    "updated_at": "2024-03-06T09:00:00",
                    "clinical_note_sections": [],
                },
            ],
            "documents": [
                {
                    "id": 1000,
                    "patient": 100,
                    "doctor": 10,
                    "description": "Referral letter",
                    "document": "/files/documents/1000.pdf",
                    "updated_at": "2024-03-05T11:00:00",
                },
                {
                    "id": 1001,
                    "patient": 101,
                    "doctor": 11,
                    "description": "Outside labs",
                    "document": "/files/documents/1001.pdf",
                    "updated_at": "2022-01-01T00:00:00",
                },
            ],
            "care_plans": [
                {
                    "id": 110,
                    "patient": 100,
                    "appointment": "500",
                    "plan_type": 1,
                    "title": "Lower BP",
                },
                {
                    "id": 111,
                    "patient": 101,
                    "appointment": "501",
                    "plan_type": 2,
                    "title": "Inhaler",
                },
            ],
            "implantable_devices": [
                {"id": 120, "patient": 100, "procedure": 70, "udi": "(01)00844588003288"},
                {"id": 121, "patient": 101, "procedure": 71, "udi": "(01)00643169007222"},
            ],
            "patient_risk_assessments": [
                {"id": 130, "patient": 100, "doctor": 10},
                {"id": 131, "patient": 101, "doctor": 11},
            ],
            "patient_physical_exams": [
                {"id": 140, "patient": 100, "doctor": 10},
                {"id": 141, "patient": 101, "doctor": 11},
            ],
            "patient_interventions": [
                {"id": 150, "patient": 100, "doctor": 10},
                {"id": 151, "patient": 101, "doctor": 11},
            ],
        },
    )


def make_state(
    dataset: SandboxDataset | None = None, limits: SandboxLimits = NO_BURST
) -> tuple[SandboxState, ManualClock]:
    clock = ManualClock(START)
    state = SandboxState.with_default_app(
        dataset or tiny_dataset(), client_secret="s3cret", limits=limits, clock=clock
    )
    return state, clock


@asynccontextmanager
async def sandbox_client(
    state: SandboxState, *, authorized: bool = True, timeout: float = 5.0
) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client routed into the sandbox app; with a fresh Bearer token unless told not to."""
    headers = {}
    if authorized:
        headers["Authorization"] = f"Bearer {state.issue_tokens().access_token}"
    transport = httpx.ASGITransport(app=create_sandbox_app(state))
    async with httpx.AsyncClient(
        transport=transport, base_url=BASE_URL, headers=headers, timeout=timeout
    ) as client:
        yield client


def ids(body: dict[str, object]) -> list[object]:
    results = body["results"]
    assert isinstance(results, list)
    return [record["id"] for record in results]
