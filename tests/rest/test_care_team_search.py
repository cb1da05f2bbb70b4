"""CareTeam, RelatedPerson and PractitionerRole: the people around a patient and the practice's
doctor roles, from the patient record, the shared appointment page and the practice lists."""

from __future__ import annotations

import httpx

from facade.upstream.drchrono.sandbox.dataset import SandboxDataset
from facade.upstream.drchrono.sandbox.state import SandboxState
from mappings.drchrono.fields import APPOINTMENT_PARAMS
from tests.conftest import all_pages

SEEN = {"Arrived", "Checked In", "In Room", "In Session", "Complete"}


def team_doctors(dataset: SandboxDataset, patient: dict) -> set[str]:
    doctors = {str(patient["doctor"])}
    doctors |= {
        str(a["doctor"])
        for a in dataset.endpoint("appointments")
        if str(a["patient"]) == str(patient["id"]) and a["status"] in SEEN
    }
    return doctors


async def test_careteam_patient_status(
    warm_fhir: httpx.AsyncClient, dataset: SandboxDataset, sandbox: SandboxState
) -> None:
    for patient in dataset.endpoint("patients")[:6]:
        before = len(sandbox.api_requests())
        status = "inactive" if patient["patient_status"] in ("I", "D") else "active"
        found = await all_pages(
            warm_fhir, f"/fhir/CareTeam?patient=Patient/{patient['id']}&status={status}"
        )
        assert [r["id"] for r in found] == [f"careteam-{patient['id']}"]
        members = {p["member"]["reference"] for p in found[0]["participant"]}
        assert {m for m in members if m.startswith("Practitioner/")} == {
            f"Practitioner/{d}" for d in team_doctors(dataset, patient)
        }
        assert f"Patient/{patient['id']}" in members
        other = "active" if status == "inactive" else "inactive"
        assert (
            await all_pages(warm_fhir, f"/fhir/CareTeam?patient={patient['id']}&status={other}")
            == []
        )
        calls = sandbox.api_requests()[before:]
        assert {c.endpoint for c in calls} <= {"patients", "appointments"}
        for call in calls:
            if call.endpoint == "appointments":
                assert call.query == {"patient": str(patient["id"]), **APPOINTMENT_PARAMS}


async def test_careteam_includes(warm_fhir: httpx.AsyncClient, dataset: SandboxDataset) -> None:
    child = next(p for p in dataset.endpoint("patients") if p["responsible_party_name"])
    bundle = (
        await warm_fhir.get(
            f"/fhir/CareTeam?patient={child['id']}&status=active"
            "&_include=CareTeam:participant:Practitioner&_include=CareTeam:participant:RelatedPerson"
            "&_include=CareTeam:participant:Patient"
        )
    ).json()
    included = {
        f"{e['resource']['resourceType']}/{e['resource']['id']}"
        for e in bundle["entry"]
        if e["search"]["mode"] == "include"
    }
    assert f"Practitioner/{child['doctor']}" in included
    assert f"Patient/{child['id']}" in included
    assert f"RelatedPerson/relatedperson-{child['id']}-responsible" in included


async def test_related_person_read_search_and_name(
    warm_fhir: httpx.AsyncClient, dataset: SandboxDataset, sandbox: SandboxState
) -> None:
    for patient in dataset.endpoint("patients")[:8]:
        roles = []
        if patient["emergency_contact_name"]:
            roles.append("emergency")
        if patient["responsible_party_name"]:
            roles.append("responsible")
        if not patient.get("primary_insurance", {}).get("is_subscriber_the_patient", True):
            roles.append("subscriber")
        before = len(sandbox.api_requests())
        found = await all_pages(warm_fhir, f"/fhir/RelatedPerson?patient={patient['id']}")
        assert sorted(r["id"] for r in found) == sorted(
            f"relatedperson-{patient['id']}-{role}" for role in roles
        )
        assert len(sandbox.api_requests()[before:]) <= 1
        for role in roles:
            one = await all_pages(
                warm_fhir, f"/fhir/RelatedPerson?_id=relatedperson-{patient['id']}-{role}"
            )
            assert [r["id"] for r in one] == [f"relatedperson-{patient['id']}-{role}"]
    child = next(p for p in dataset.endpoint("patients") if p["responsible_party_name"])
    family = child["responsible_party_name"].split()[-1]
    named = await all_pages(warm_fhir, f"/fhir/RelatedPerson?patient={child['id']}&name={family}")
    assert named and all(family in r["name"][0]["text"] for r in named)
    read = await warm_fhir.get(f"/fhir/RelatedPerson/relatedperson-{child['id']}-subscriber")
    assert read.status_code == 200 and read.json()["address"][0]["line"]
    for missing in (f"relatedperson-{child['id']}-cousin", "relatedperson-1-emergency", "x"):
        assert (await warm_fhir.get(f"/fhir/RelatedPerson/{missing}")).status_code == 404


async def test_practitioner_role_specialty_and_practitioner(
    warm_fhir: httpx.AsyncClient, dataset: SandboxDataset
) -> None:
    doctors = dataset.endpoint("doctors")
    everything = await all_pages(warm_fhir, "/fhir/PractitionerRole")
    assert {r["practitioner"]["reference"] for r in everything} == {
        f"Practitioner/{d['id']}" for d in doctors
    }
    family = [d for d in doctors if d["specialty"] == "Family Medicine"]
    for value in ("207Q00000X", "http://nucc.org/provider-taxonomy|207Q00000X"):
        found = await all_pages(warm_fhir, f"/fhir/PractitionerRole?specialty={value}")
        assert {r["practitioner"]["reference"] for r in found} == {
            f"Practitioner/{d['id']}" for d in family
        }
    doctor = doctors[1]
    for value in (str(doctor["id"]), f"Practitioner/{doctor['id']}"):
        found = await all_pages(warm_fhir, f"/fhir/PractitionerRole?practitioner={value}")
        assert found and all(
            r["practitioner"]["reference"] == f"Practitioner/{doctor['id']}" for r in found
        )
    bundle = (
        await warm_fhir.get(
            f"/fhir/PractitionerRole?practitioner={doctor['id']}&_include=PractitionerRole:practitioner"
        )
    ).json()
    assert any(e["resource"]["resourceType"] == "Practitioner" for e in bundle["entry"])
    role = everything[0]
    assert (await warm_fhir.get(f"/fhir/PractitionerRole/{role['id']}")).json() == role
    assert (await warm_fhir.get("/fhir/PractitionerRole/1-2")).status_code == 404
