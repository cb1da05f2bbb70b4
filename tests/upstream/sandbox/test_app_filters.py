"""Each endpoint's documented filtering parameters keep exactly the records they should."""

from __future__ import annotations

import pytest

from tests.upstream.sandbox.app_harness import ids, make_state, sandbox_client

WIDE = "date_range=2024-01-01/2024-06-30"

FILTER_CASES = [
    # patients (inactive 102 and deceased 103 are hidden unless show_inactive=true)
    ("patients", "", [100, 101]),
    ("patients", "show_inactive=true", [100, 101, 102, 103]),
    ("patients", "first_name=JA", [100]),
    ("patients", "last_name=smith", [101]),
    ("patients", "date_of_birth=1978-04-12", [100]),
    ("patients", "doctor=11", [101]),
    ("patients", "email=jane.doe@example.com", [100]),
    ("patients", "gender=Male", [101]),
    ("patients", "race=black", [101]),
    ("patients", "ethnicity=hispanic", [101]),
    ("patients", "preferred_language=spa", [101]),
    ("patients", "since=2024-01-01", [100]),
    ("patients", "since=2024-03-05T10:41:10", []),
    ("patients", "offices=21", [101]),
    ("patients", "offices=20,21", [100, 101]),
    ("patients", "unknown_param=ignored", [100, 101]),
    # practice-level endpoints
    ("doctors", "", [10, 11]),
    ("users", "", [900, 901]),
    ("offices", "", [20]),
    ("offices", "show_archived=true", [20, 21]),
    ("custom_demographics", "", [30, 31]),
    ("custom_demographics", "doctor=10", [30]),
    ("custom_demographics", "doctor=10&show_archived=true", [30, 32]),
    # appointments: ordered by scheduled_time; archived (deleted) hidden by default
    ("appointments", WIDE, ["500", "501", "499"]),
    ("appointments", f"{WIDE}&show_archived=true", ["500", "502", "501", "499"]),
    ("appointments", "date=2024-03-05", ["500"]),
    ("appointments", "since=2024-05-01T00:00:00", ["501", "499"]),
    ("appointments", f"{WIDE}&patient=100", ["500", "499"]),
    ("appointments", f"{WIDE}&doctor=11", ["501"]),
    ("appointments", f"{WIDE}&office=20", ["500", "499"]),
    ("appointments", f"{WIDE}&status=Arrived", ["501"]),
    # clinical data by patient
    ("problems", "patient=101", [41]),
    ("allergies", "patient=100", [50]),
    ("medications", "patient=101", [61]),
    ("procedures", "patient=100", [70]),
    ("procedures", "doctor=11", [71]),
    ("procedures", "appointment=501", [71]),
    ("procedures", "service_date=2024-03-05", [70]),
    ("patient_vaccine_records", "patient=101", [96]),
    ("patient_vaccine_records", "doctor=10", [95]),
    ("patient_vaccine_records", "cvx_code=208", [95]),
    ("patient_vaccine_records", "since=2024-01-01", [96]),
    ("documents", "patient=100", [1000]),
    ("documents", "doctor=11", [1001]),
    ("documents", "since=2024-01-01", [1000]),
    ("care_plans", "patient=101", [111]),
    ("care_plans", "plan_type=1", [110]),
    ("care_plans", "doctor=11", [111]),
    ("implantable_devices", "patient=100", [120]),
    ("implantable_devices", "doctor=11", [121]),
    ("patient_risk_assessments", "patient=100", [130]),
    ("patient_risk_assessments", "doctor=11", [131]),
    ("patient_physical_exams", "doctor=10", [140]),
    ("patient_interventions", "patient=101", [151]),
    # labs: orders by doctor/since, tests and results by order, results by ordering doctor
    ("lab_orders", "doctor=11", [81]),
    ("lab_orders", "since=2024-04-01", [81]),
    ("lab_tests", "order=80", [85]),
    ("lab_results", "order=81", [91]),
    ("lab_results", "doctor=10", [90]),
    # clinical notes: date filters go through the appointment's scheduled time
    ("clinical_notes", "date=2024-03-05", [800]),
    ("clinical_notes", WIDE, [800, 801]),
    ("clinical_notes", f"{WIDE}&show_archived=true", [800, 801, 802]),
    ("clinical_notes", f"{WIDE}&patient=101", [801]),
    ("clinical_notes", f"{WIDE}&office=20", [800]),
    ("clinical_notes", "since=2024-04-01", [801]),
]


@pytest.mark.parametrize(("name", "query", "expected"), FILTER_CASES)
async def test_filter_keeps_exactly_the_matching_records(
    name: str, query: str, expected: list[object]
) -> None:
    state, _ = make_state()
    async with sandbox_client(state) as client:
        response = await client.get(f"/api/{name}?{query}")
    assert response.status_code == 200, response.text
    assert ids(response.json()) == expected


async def test_date_of_death_is_shown_only_with_show_inactive() -> None:
    state, _ = make_state()
    async with sandbox_client(state) as client:
        hidden = (await client.get("/api/patients/103")).json()
        shown = (await client.get("/api/patients/103?show_inactive=true")).json()
    assert "date_of_death" not in hidden
    assert shown["date_of_death"] == "2022-02-02"


@pytest.mark.parametrize("name", ["appointments", "clinical_notes"])
async def test_list_without_since_date_or_date_range_is_400(name: str) -> None:
    state, _ = make_state()
    async with sandbox_client(state) as client:
        listing = await client.get(f"/api/{name}?patient=100")
        by_id = await client.get(f"/api/{name}/{'500' if name == 'appointments' else 800}")
    assert listing.status_code == 400
    assert "detail" in listing.json()
    assert by_id.status_code == 200


@pytest.mark.parametrize("name", ["appointments", "clinical_notes"])
async def test_date_range_over_190_days_is_refused_unless_in_the_past(name: str) -> None:
    state, _ = make_state()  # today is 2024-06-03
    async with sandbox_client(state) as client:
        too_long = await client.get(f"/api/{name}?date_range=2024-01-01/2024-12-31")
        exactly_190 = await client.get(f"/api/{name}?date_range=2024-01-01/2024-07-09")
        long_but_past = await client.get(f"/api/{name}?date_range=2020-01-01/2024-06-02")
    assert too_long.status_code == 400
    assert "date_range" in too_long.json()
    assert exactly_190.status_code == 200
    assert long_but_past.status_code == 200


@pytest.mark.parametrize(
    ("query", "param", "message"),
    [
        ("patient=abc&date=2024-03-05", "patient", "Enter a whole number."),
        ("date=2024-13-01", "date", "Enter a valid date."),
        ("date_range=2024-01-01", "date_range", None),
        ("date_range=2024-02-01/2024-01-01", "date_range", None),
        ("since=yesterday", "since", "Enter a valid date/time."),
    ],
)
async def test_invalid_filter_values_are_drf_style_400s(
    query: str, param: str, message: str | None
) -> None:
    state, _ = make_state()
    async with sandbox_client(state) as client:
        response = await client.get(f"/api/appointments?{query}")
    assert response.status_code == 400
    body = response.json()
    assert list(body) == [param]
    if message:
        assert body[param] == [message]
