"""Dates at the ends of the calendar (9999-12-31, 0001-01-01 with a +14:00 offset) get a
correct answer or a 400, never a 500: searches, the _lastUpdated pushdown, $docref and the
audit log, through the real app (a bulk export's _since: tests/bulk/test_since_bounds.py)."""

from __future__ import annotations

from urllib.parse import quote

import httpx
import pytest

from facade.runtime import Runtime
from facade.upstream.drchrono.sandbox.dataset import SandboxDataset
from tests.conftest import all_pages
from tests.tokens import token
from tests.vendors import SANDBOX_PATIENTS

NOBODY = [
    "birthdate=9999-12-31",
    "birthdate=gt9999-12-31",
    "birthdate=9999",
    "birthdate=9999-12",
    "birthdate=9999-12-31T23:59:59-14:00",  # ends after the last instant datetime holds
    "birthdate=0001-01-01T00:00:00+14:00",  # starts before the first one
    "birthdate=lt0001-01-01",
    "birthdate=ap9999-12-31",
    "birthdate=ap0001-01-01",
    "_lastUpdated=9999-12-31",
    "_lastUpdated=gt9999-12-31",
    "_lastUpdated=sa9999-12-31T23:59:59.999999Z",
    "death-date=eb0001-01-01",
]
EVERYBODY = [
    "birthdate=ge0001-01-01",
    "birthdate=le9999-12-31",
    "birthdate=lt9999-12-31T23:59:59Z",
    "birthdate=gt0001-01-01T00:00:00+14:00",
    "_lastUpdated=gt0001-01-01",  # pushed down as the vendor's `since`: no day before year 1
    "_lastUpdated=ge0001-01-01T00:00:00+14:00",
    "_lastUpdated=lt9999-12-31",
]


@pytest.mark.parametrize("query", NOBODY)
async def test_a_date_at_the_end_of_the_calendar_matches_no_patient(
    fhir: httpx.AsyncClient, query: str
) -> None:
    name, _, value = query.partition("=")
    response = await fhir.get(f"/fhir/Patient?{name}={quote(value)}")
    assert response.status_code == 200, response.text
    assert response.json().get("entry", []) == []


@pytest.mark.parametrize("query", EVERYBODY)
async def test_a_range_reaching_the_end_of_the_calendar_matches_every_patient(
    fhir: httpx.AsyncClient, query: str
) -> None:
    name, _, value = query.partition("=")
    found = await all_pages(fhir, f"/fhir/Patient?{name}={quote(value)}&_count=50")
    assert len(found) == SANDBOX_PATIENTS


@pytest.mark.parametrize("value", ["0000", "0000-01-01", "9999-12-32", "10000-01-01"])
async def test_a_year_outside_the_calendar_is_a_client_error(
    fhir: httpx.AsyncClient, value: str
) -> None:
    response = await fhir.get(f"/fhir/Patient?birthdate={value}")
    assert response.status_code == 400, response.text
    assert response.json()["issue"][0]["details"]["coding"][0]["code"] == (
        "invalid-parameter-value"
    )


async def _patient_with(fhir: httpx.AsyncClient, resource_type: str) -> str:
    for patient in await all_pages(fhir, "/fhir/Patient?_count=50"):
        bundle = (await fhir.get(f"/fhir/{resource_type}?patient={patient['id']}")).json()
        if bundle.get("entry"):
            return str(patient["id"])
    raise AssertionError(f"no sandbox patient has a {resource_type}")


async def test_observation_dates_at_the_end_of_the_calendar(fhir: httpx.AsyncClient) -> None:
    patient = await _patient_with(fhir, "Observation")
    everything = await all_pages(fhir, f"/fhir/Observation?patient={patient}")

    async def search(value: str) -> list[dict]:
        return await all_pages(fhir, f"/fhir/Observation?patient={patient}&date={quote(value)}")

    assert await search("9999-12-31T23:59:59Z") == []
    assert await search("lt0001-01-01") == []
    # Only a period with no end (ongoing) reaches past 9999-12-31.
    later = await search("gt9999-12-31")
    assert all("effectivePeriod" in o and "end" not in o["effectivePeriod"] for o in later), later
    dated = [o for o in everything if any(k.startswith("effective") for k in o)]
    assert len(await search("le9999-12-31T23:59:59.999999Z")) == len(dated)


async def test_encounter_dates_at_the_end_of_the_calendar(fhir: httpx.AsyncClient) -> None:
    patient = await _patient_with(fhir, "Encounter")
    everything = await all_pages(fhir, f"/fhir/Encounter?patient={patient}")
    for value, expected in [
        ("ge0001-01-01T00:00:00+14:00", len(everything)),
        ("ap9999", 0),
        ("eq9999-12-31T23:59:59.999999Z", 0),
    ]:
        found = await all_pages(fhir, f"/fhir/Encounter?patient={patient}&date={quote(value)}")
        assert len(found) == expected, value


@pytest.mark.parametrize("dates", ["start=9999-12-31", "end=0001-01-01"])
async def test_docref_with_a_range_that_holds_no_date_is_a_client_error(
    fhir: httpx.AsyncClient, dataset: SandboxDataset, dates: str
) -> None:
    patient = dataset.endpoint("patients")[0]["id"]
    response = await fhir.get(f"/fhir/DocumentReference/$docref?patient={patient}&{dates}")
    assert response.status_code == 400, response.text


async def test_audit_log_since_the_ends_of_the_calendar(
    fhir: httpx.AsyncClient, runtime: Runtime
) -> None:
    await fhir.get("/fhir/Patient")  # one audited search
    auditor = {"Authorization": f"Bearer {token(runtime, 'system/AuditEvent.rs')}"}

    async def events_since(since: str) -> list[dict]:
        response = await fhir.get(f"/fhir/AuditEvent?date=ge{quote(since)}", headers=auditor)
        assert response.status_code == 200, response.text
        return list(response.json()["entry"])

    assert await events_since("0001-01-01T00:00:00+14:00")
    assert await events_since("9999-12-31T23:59:59Z") == []
