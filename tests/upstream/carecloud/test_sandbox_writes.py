"""Writes that stick: a created appointment shows in later reads, an overlapping one is a
409, a submitted claim reads back, and eligibility follows the patient's insurance.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from facade.upstream.carecloud.sandbox.state import SandboxState


def new_appointment(state: SandboxState, **overrides: Any) -> dict[str, Any]:
    adult = state.dataset.patients[0]
    body = {
        "start_time": "2026-06-10T09:00:00-04:00",
        "end_time": "2026-06-10T09:30:00-04:00",
        "provider_id": adult["primary_provider_id"],
        "location_id": adult["primary_location_id"],
        "visit_reason_name": "Blood pressure check",
        "patient": {"id": adult["id"]},
    }
    body.update(overrides)
    return {"appointment": body}


async def test_a_created_appointment_is_listed_and_readable(
    api: httpx.AsyncClient, state: SandboxState
) -> None:
    created = await api.post("/create_appointment", json=new_appointment(state))

    assert created.status_code == 201
    appointment_id = created.json()["appointment"]
    listed = await api.get("/appointments", params={"start_date": "2026-06-10"})
    assert appointment_id in {a["id"] for a in listed.json()["appointments"]}
    detail = (await api.get(f"/appointments/{appointment_id}")).json()["appointment"]
    assert detail["status"] == "scheduled"
    assert detail["visit_reason_name"] == "Blood pressure check"
    assert detail["start_time"] == "2026-06-10T09:00:00-04:00"
    assert detail["created_at"] == "2026-06-01T10:00:00-04:00"


async def test_an_overlapping_appointment_for_the_same_provider_is_a_409(
    api: httpx.AsyncClient, state: SandboxState
) -> None:
    await api.post("/create_appointment", json=new_appointment(state))

    clash = await api.post(
        "/create_appointment",
        json=new_appointment(
            state, start_time="2026-06-10T09:15:00-04:00", end_time="2026-06-10T09:45:00-04:00"
        ),
    )

    assert clash.status_code == 409
    assert clash.json() == {"error": "Provider already has an appointment at that time"}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"start_time": "2026-06-10T09:00:00"},
            "Invalid start_time: expected ISO 8601 with offset",
        ),
        ({"end_time": "2026-06-10T08:00:00-04:00"}, "end_time must be after start_time"),
        ({"provider_id": 1}, "Unknown provider_id"),
        ({"provider_id": "abc"}, "Invalid provider_id"),
        ({"visit_reason_name": ""}, "visit_reason_name is required"),
        ({"patient": {"id": "nope"}}, "Unknown patient"),
    ],
)
async def test_bad_appointment_fields_are_422s(
    api: httpx.AsyncClient, state: SandboxState, overrides: dict[str, Any], message: str
) -> None:
    response = await api.post("/create_appointment", json=new_appointment(state, **overrides))

    assert response.status_code == 422
    assert response.json() == {"error": message}


def claim_body(state: SandboxState) -> dict[str, Any]:
    adult = state.dataset.patients[0]
    encounter = state.dataset.encounters_of(adult["id"])[-2]
    insurance = adult["insurances"][0]
    return {
        "claim": {
            "encounter_id": encounter["id"],
            "rendering_provider_id": encounter["provider_id"],
            "payer_id": insurance["payer_id"],
            "member_id": insurance["member_id"],
            "diagnoses": [d["code"] for d in encounter["diagnoses"]],
            "service_lines": [
                {
                    "cpt_code": "99214",
                    "modifiers": ["25"],
                    "units": 1,
                    "charge": 180.0,
                    "diagnosis_pointers": [1, 2],
                },
                {"cpt_code": "36415", "units": 1, "charge": 15},
            ],
        }
    }


async def test_a_submitted_claim_reads_back(api: httpx.AsyncClient, state: SandboxState) -> None:
    submitted = await api.post("/submit_claim", json=claim_body(state))

    assert submitted.status_code == 202
    summary = submitted.json()["claim"]
    assert set(summary) == {"id", "status", "control_number", "submitted_at"}
    assert summary["status"] == "submitted"
    stored = (await api.get(f"/claims/{summary['id']}")).json()["claim"]
    assert stored["control_number"] == summary["control_number"]
    assert stored["patient_id"] == state.dataset.patients[0]["id"]
    assert stored["total_charge"] == 195.0
    assert stored["service_lines"][1]["diagnosis_pointers"] == [1]


async def test_a_claim_for_an_unknown_encounter_is_a_422(
    api: httpx.AsyncClient, state: SandboxState
) -> None:
    body = claim_body(state)
    body["claim"]["encounter_id"] = "nope"

    response = await api.post("/submit_claim", json=body)

    assert response.status_code == 422
    assert response.json() == {"error": "Unknown encounter_id"}


async def test_eligibility_follows_the_primary_insurance(
    api: httpx.AsyncClient, state: SandboxState
) -> None:
    adult = state.dataset.patients[0]
    primary = adult["insurances"][0]

    response = await api.get("/eligibility", params={"patient_id": adult["id"]})

    answer = response.json()["eligibility"]
    assert answer["status"] == "active"
    assert (answer["payer_id"], answer["member_id"], answer["plan_name"]) == (
        primary["payer_id"],
        primary["member_id"],
        primary["plan_name"],
    )
    assert answer["coverage_start"] == primary["effective_date"]
    assert answer["copay"]["office_visit"] > 0
    assert 0 <= answer["deductible"]["remaining"] <= answer["deductible"]["individual"]
    assert answer["checked_at"] == "2026-06-01T10:00:00-04:00"


async def test_eligibility_before_coverage_started_is_inactive(
    api: httpx.AsyncClient, state: SandboxState
) -> None:
    adult = state.dataset.patients[0]

    response = await api.get(
        "/eligibility", params={"patient_id": adult["id"], "service_date": "2001-01-01"}
    )

    assert response.json()["eligibility"]["status"] == "inactive"


async def test_eligibility_for_an_unknown_member_is_a_404(
    api: httpx.AsyncClient, state: SandboxState
) -> None:
    adult = state.dataset.patients[0]

    response = await api.get("/eligibility", params={"patient_id": adult["id"], "member_id": "X1"})

    assert response.status_code == 404
    assert response.json() == {"error": "Coverage not found"}
