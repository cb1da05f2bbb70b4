"""Reads: page numbers with fixed sizes and a Link header, the patient and appointment filters,
the 93-day window and today-only default, encounters per patient, and 404 bodies.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from zoneinfo import ZoneInfo

import httpx
import pytest

from facade.upstream.carecloud.sandbox.state import ManualClock, SandboxState

NEW_YORK = ZoneInfo("America/New_York")


def links(response: httpx.Response) -> dict[str, str]:
    return {
        rel: url for url, rel in re.findall(r'<([^>]+)>; rel="(\w+)"', response.headers["Link"])
    }


async def test_patients_come_fifty_a_page_with_first_next_and_last_links(
    api: httpx.AsyncClient, state: SandboxState
) -> None:
    first = await api.get("/patients")
    second = await api.get(links(first)["next"])

    assert len(first.json()["patients"]) == 50
    assert set(links(first)) == {"first", "next", "last"}
    assert links(first)["last"] == "http://carecloud.sandbox/patients?page=2"
    assert len(second.json()["patients"]) == len(state.dataset.patients) - 50
    assert set(links(second)) == {"first", "prev", "last"}
    ids = [p["id"] for p in first.json()["patients"] + second.json()["patients"]]
    assert ids == [p["id"] for p in state.dataset.patients]


async def test_links_keep_the_filters(api: httpx.AsyncClient) -> None:
    response = await api.get("/patients", params={"status": "A", "page": 1})

    assert "status=A" in links(response)["last"]
    assert "page=" in links(response)["first"]


async def test_a_page_past_the_last_is_an_empty_list(api: httpx.AsyncClient) -> None:
    response = await api.get("/patients", params={"page": 9})

    assert response.status_code == 200
    assert response.json() == {"patients": []}
    assert "prev" in links(response)


async def test_a_bad_page_number_is_a_400(api: httpx.AsyncClient) -> None:
    response = await api.get("/patients", params={"page": "zero"})

    assert response.status_code == 400
    assert response.json() == {"error": "Invalid page"}


async def test_per_page_is_not_a_parameter(api: httpx.AsyncClient) -> None:
    response = await api.get("/patients", params={"per_page": 5})

    assert len(response.json()["patients"]) == 50


@pytest.mark.parametrize(
    ("param", "field"),
    [("provider_id", "primary_provider_id"), ("location_id", "primary_location_id")],
)
async def test_patients_filter_by_provider_and_location(
    api: httpx.AsyncClient, state: SandboxState, param: str, field: str
) -> None:
    wanted = state.dataset.patients[0][field]

    response = await api.get("/patients", params={param: wanted, "page": 1})

    found = response.json()["patients"]
    expected = [p["id"] for p in state.dataset.patients if p[field] == wanted][:50]
    assert [p["id"] for p in found] == expected
    assert 0 < len(found) < len(state.dataset.patients)


async def test_patients_filter_by_status(api: httpx.AsyncClient, state: SandboxState) -> None:
    response = await api.get("/patients", params={"status": "I"})

    found = response.json()["patients"]
    assert found
    assert all(p["status"] == "I" for p in found)
    assert state.dataset.patients[2]["id"] in {p["id"] for p in found}


async def test_names_match_case_insensitive_prefixes(
    api: httpx.AsyncClient, state: SandboxState
) -> None:
    adult = state.dataset.patients[0]

    response = await api.get(
        "/patients",
        params={
            "last_name": adult["last_name"][:3].upper(),
            "first_name": adult["first_name"][:2].lower(),
        },
    )

    found = response.json()["patients"]
    assert adult["id"] in {p["id"] for p in found}
    assert all(p["last_name"].lower().startswith(adult["last_name"][:3].lower()) for p in found)


async def test_patients_filter_by_date_of_birth(
    api: httpx.AsyncClient, state: SandboxState
) -> None:
    child = state.dataset.patients[1]

    response = await api.get("/patients", params={"date_of_birth": child["date_of_birth"]})

    assert [p["id"] for p in response.json()["patients"]] == [child["id"]]


async def test_bad_filter_values_are_400s(api: httpx.AsyncClient) -> None:
    assert (await api.get("/patients", params={"provider_id": "x"})).json() == {
        "error": "Invalid provider_id"
    }
    assert (await api.get("/patients", params={"status": "Q"})).status_code == 400
    assert (await api.get("/patients", params={"date_of_birth": "June"})).status_code == 400


async def test_patient_detail_and_its_404(api: httpx.AsyncClient, state: SandboxState) -> None:
    adult = state.dataset.patients[0]

    found = await api.get(f"/patients/{adult['id']}")
    missing = await api.get("/patients/00000000-0000-4000-8000-000000000000")

    assert found.json() == {"patient": adult}
    assert missing.status_code == 404
    assert missing.json() == {"error": "Patient not found"}


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/appointments/nope", "Appointment not found"),
        ("/encounters/nope", "Encounter not found"),
        ("/providers/1", "Provider not found"),
        ("/locations/1", "Location not found"),
        ("/claims/nope", "Claim not found"),
        ("/no/such/path", "Not found"),
    ],
)
async def test_unknown_ids_answer_404_with_an_error_body(
    api: httpx.AsyncClient, path: str, message: str
) -> None:
    response = await api.get(path)

    assert response.status_code == 404
    assert response.json() == {"error": message}


async def test_appointments_default_to_today_in_the_practice_time_zone(
    api: httpx.AsyncClient, state: SandboxState, clock: ManualClock
) -> None:
    response = await api.get("/appointments")

    found = response.json()["appointments"]
    today = clock().astimezone(NEW_YORK).date()
    assert found
    assert all(datetime.fromisoformat(a["start_time"]).date() == today for a in found)
    expected = {
        a["id"]
        for a in state.dataset.appointments
        if datetime.fromisoformat(a["start_time"]).date() == today
    }
    assert {a["id"] for a in found} == expected


async def test_today_follows_new_york_not_utc(
    api: httpx.AsyncClient, state: SandboxState, clock: ManualClock
) -> None:
    clock.now = datetime(2026, 6, 2, 2, 0, tzinfo=ZoneInfo("UTC"))  # 22:00 on June 1 in New York
    api.headers["Authorization"] = f"Bearer {state.issue_session()['session_token']}"

    found = (await api.get("/appointments")).json()["appointments"]

    assert found
    assert {datetime.fromisoformat(a["start_time"]).date() for a in found} == {date(2026, 6, 1)}


async def test_a_range_of_93_days_is_allowed_and_94_is_not(api: httpx.AsyncClient) -> None:
    allowed = await api.get(
        "/appointments", params={"start_date": "2026-03-01", "end_date": "2026-06-01"}
    )
    refused = await api.get(
        "/appointments", params={"start_date": "2026-02-28", "end_date": "2026-06-01"}
    )

    assert allowed.status_code == 200
    assert refused.status_code == 400
    assert refused.json() == {"error": "Date range may not exceed 93 days"}


async def test_appointments_in_a_window_are_inclusive_and_in_time_order(
    api: httpx.AsyncClient, state: SandboxState
) -> None:
    response = await api.get(
        "/appointments", params={"start_date": "20260501", "end_date": "2026-06-30"}
    )

    found = response.json()["appointments"]
    days = [datetime.fromisoformat(a["start_time"]).date() for a in found]
    assert all(date(2026, 5, 1) <= day <= date(2026, 6, 30) for day in days)
    starts = [datetime.fromisoformat(a["start_time"]) for a in found]
    assert starts == sorted(starts)
    expected = [
        a
        for a in state.dataset.appointments
        if date(2026, 5, 1) <= datetime.fromisoformat(a["start_time"]).date() <= date(2026, 6, 30)
    ]
    assert len(found) == min(100, len(expected))


@pytest.mark.parametrize("field", ["provider_id", "location_id", "status", "patient_id"])
async def test_appointments_filter(api: httpx.AsyncClient, state: SandboxState, field: str) -> None:
    window = {"start_date": "2026-04-01", "end_date": "2026-06-30"}
    everything = (await api.get("/appointments", params=window)).json()["appointments"]
    wanted = everything[0][field]

    response = await api.get("/appointments", params={**window, field: wanted})

    found = response.json()["appointments"]
    assert found
    assert all(a[field] == wanted for a in found)
    assert [a["id"] for a in found] == [a["id"] for a in everything if a[field] == wanted]


async def test_encounters_need_a_patient_id(api: httpx.AsyncClient) -> None:
    response = await api.get("/encounters")

    assert response.status_code == 400
    assert response.json() == {"error": "patient_id is required"}


async def test_encounters_of_a_patient_come_unpaged_and_filter_on_date_of_service(
    api: httpx.AsyncClient, state: SandboxState
) -> None:
    adult = state.dataset.patients[0]["id"]
    everything = (await api.get("/encounters", params={"patient_id": adult})).json()["encounters"]

    recent = await api.get(
        "/encounters",
        params={"patient_id": adult, "start_date": "2025-06-01", "end_date": "2026-06-01"},
    )

    assert "Link" not in recent.headers
    assert len(everything) == 7
    assert all(e["patient_id"] == adult for e in everything)
    found = recent.json()["encounters"]
    assert [e["id"] for e in found] == [
        e["id"] for e in everything if "2025-06-01" <= e["date_of_service"] <= "2026-06-01"
    ]
    detail = await api.get(f"/encounters/{found[-1]['id']}")
    assert detail.json() == {"encounter": found[-1]}


async def test_the_request_log_records_what_was_asked(
    api: httpx.AsyncClient, state: SandboxState
) -> None:
    await api.get("/patients", params={"last_name": "Sm", "page": 2})

    entry = state.api_requests("patients")[-1]
    assert (entry.method, entry.path, entry.params, entry.status) == (
        "GET",
        "/patients",
        {"last_name": "Sm", "page": "2"},
        200,
    )
    assert entry.counted and entry.fault is None
