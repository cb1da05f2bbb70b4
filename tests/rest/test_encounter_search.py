"""Encounter: the visits that happened, exactly the sandbox's appointments, from the one
appointment page vitals share (APPOINTMENT_PARAMS), with the date comparators and read."""

from __future__ import annotations

from datetime import date, timedelta

import httpx

from facade.upstream.drchrono.sandbox.dataset import SandboxDataset
from facade.upstream.drchrono.sandbox.state import SandboxState
from mappings.drchrono.fields import APPOINTMENT_PARAMS
from tests.conftest import all_pages

SEEN = {"Arrived", "Checked In", "In Room", "In Session", "Complete"}


def visits_of(dataset: SandboxDataset, patient_id: object) -> list[dict]:
    return [
        a
        for a in dataset.endpoint("appointments")
        if str(a["patient"]) == str(patient_id) and a["status"] in SEEN and not a["deleted_flag"]
    ]


async def test_patient_search_is_exactly_the_visits_from_one_shared_call(
    warm_fhir: httpx.AsyncClient, dataset: SandboxDataset, sandbox: SandboxState
) -> None:
    for patient in dataset.endpoint("patients")[:6]:
        for reference in (str(patient["id"]), f"Patient/{patient['id']}"):
            before = len(sandbox.api_requests())
            found = await all_pages(warm_fhir, f"/fhir/Encounter?patient={reference}")
            expected = sorted(f"encounter-{a['id']}" for a in visits_of(dataset, patient["id"]))
            assert sorted(r["id"] for r in found) == expected
            assert all(r["subject"]["reference"] == f"Patient/{patient['id']}" for r in found)
            calls = sandbox.api_requests()[before:]
            assert {c.endpoint for c in calls} <= {"appointments"}
            assert len(calls) <= 1
            for call in calls:
                assert call.query == {"patient": str(patient["id"]), **APPOINTMENT_PARAMS}
    # Booked, cancelled and no-show appointments have no Encounter.
    assert any(a["status"] not in SEEN for a in dataset.endpoint("appointments"))


async def test_date_comparators(warm_fhir: httpx.AsyncClient, dataset: SandboxDataset) -> None:
    patient = dataset.endpoint("patients")[0]
    visits = visits_of(dataset, patient["id"])
    day = date.fromisoformat(visits[len(visits) // 2]["scheduled_time"][:10])
    days = {a["id"]: date.fromisoformat(a["scheduled_time"][:10]) for a in visits}
    for prefix, keep in (
        ("ge", lambda d: d >= day),
        ("gt", lambda d: d > day),
        ("le", lambda d: d <= day),
        ("lt", lambda d: d < day),
        ("", lambda d: d == day),
    ):
        found = await all_pages(
            warm_fhir, f"/fhir/Encounter?patient={patient['id']}&date={prefix}{day.isoformat()}"
        )
        expected = sorted(f"encounter-{i}" for i, d in days.items() if keep(d))
        assert sorted(r["id"] for r in found) == expected, prefix
    later = (day + timedelta(days=1)).isoformat()
    both = await all_pages(
        warm_fhir,
        f"/fhir/Encounter?date=ge{day.isoformat()}&date=lt{later}&patient={patient['id']}",
    )
    assert sorted(r["id"] for r in both) == sorted(
        f"encounter-{i}" for i, d in days.items() if d == day
    )


async def test_status_class_type_and_identifier(
    warm_fhir: httpx.AsyncClient, dataset: SandboxDataset
) -> None:
    patient = dataset.endpoint("patients")[0]
    visits = visits_of(dataset, patient["id"])
    base = f"/fhir/Encounter?patient={patient['id']}"
    finished = await all_pages(warm_fhir, f"{base}&status=finished")
    assert len(finished) == sum(a["status"] == "Complete" for a in visits)
    assert await all_pages(warm_fhir, f"{base}&status=cancelled") == []
    ambulatory = await all_pages(
        warm_fhir, f"{base}&class=http://terminology.hl7.org/CodeSystem/v3-ActCode|AMB"
    )
    assert len(ambulatory) == len(visits)
    new_patient = [a for a in visits if a["reason"] == "New patient visit"]
    typed = await all_pages(warm_fhir, f"{base}&type=http://snomed.info/sct|185349003")
    assert sorted(r["id"] for r in typed) == sorted(f"encounter-{a['id']}" for a in new_patient)
    visit = visits[0]
    by_identifier = await all_pages(
        warm_fhir, f"{base}&identifier=urn:drchrono:appointment|{visit['id']}"
    )
    assert [r["id"] for r in by_identifier] == [f"encounter-{visit['id']}"]
    refused = await warm_fhir.get(f"{base}&discharge-disposition=home")
    assert refused.status_code == 400
    assert "discharge disposition" in refused.json()["issue"][0]["details"]["text"]


async def test_read_and_id_search(
    warm_fhir: httpx.AsyncClient, dataset: SandboxDataset, sandbox: SandboxState
) -> None:
    visit = visits_of(dataset, dataset.endpoint("patients")[1]["id"])[0]
    read = await warm_fhir.get(f"/fhir/Encounter/encounter-{visit['id']}")
    assert read.status_code == 200
    body = read.json()
    assert body["subject"]["reference"] == f"Patient/{visit['patient']}"
    assert body["participant"][0]["individual"]["reference"] == f"Practitioner/{visit['doctor']}"
    assert body["location"][0]["location"]["reference"] == f"Location/{visit['office']}"
    assert body["period"]["start"].startswith(visit["status_transitions"][0]["datetime"][:16])
    found = await all_pages(warm_fhir, f"/fhir/Encounter?_id=encounter-{visit['id']}")
    assert [r["id"] for r in found] == [f"encounter-{visit['id']}"]
    cancelled = next(a for a in dataset.endpoint("appointments") if a["status"] == "Cancelled")
    for missing in (f"encounter-{cancelled['id']}", "encounter-1", "allergy-5", "nothing"):
        assert (await warm_fhir.get(f"/fhir/Encounter/{missing}")).status_code == 404


async def test_a_patient_is_required(warm_fhir: httpx.AsyncClient) -> None:
    response = await warm_fhir.get("/fhir/Encounter?status=finished")
    assert response.status_code == 400
