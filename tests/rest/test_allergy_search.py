"""AllergyIntolerance: a patient's allergies, exactly the sandbox's records, from one vendor
call (the patient filter pushed down), with Provenance and the compartment's rules."""

from __future__ import annotations

import httpx

from facade.upstream.drchrono.sandbox.dataset import SandboxDataset
from facade.upstream.drchrono.sandbox.state import SandboxState
from tests.conftest import all_pages


def allergies_of(dataset: SandboxDataset, patient_id: object) -> list[dict]:
    return [a for a in dataset.endpoint("allergies") if str(a["patient"]) == str(patient_id)]


async def test_patient_search_returns_exactly_the_patients_allergies(
    warm_fhir: httpx.AsyncClient, dataset: SandboxDataset, sandbox: SandboxState
) -> None:
    for patient in dataset.endpoint("patients")[:6]:
        for reference in (str(patient["id"]), f"Patient/{patient['id']}"):
            before = len(sandbox.api_requests())
            found = await all_pages(warm_fhir, f"/fhir/AllergyIntolerance?patient={reference}")
            expected = sorted(f"allergy-{a['id']}" for a in allergies_of(dataset, patient["id"]))
            assert sorted(r["id"] for r in found) == expected
            assert all(r["patient"]["reference"] == f"Patient/{patient['id']}" for r in found)
            calls = sandbox.api_requests()[before:]
            assert {c.endpoint for c in calls} <= {"allergies"}
            assert all(c.query["patient"] == str(patient["id"]) for c in calls)


async def test_clinical_status_filters_and_or_lists(
    warm_fhir: httpx.AsyncClient, dataset: SandboxDataset
) -> None:
    patient = next(
        p for p in dataset.endpoint("patients") if len(allergies_of(dataset, p["id"])) > 1
    )
    system = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
    for status in ("active", "inactive", f"{system}|active", "active,inactive"):
        found = await all_pages(
            warm_fhir, f"/fhir/AllergyIntolerance?patient={patient['id']}&clinical-status={status}"
        )
        wanted = {s.rpartition("|")[2] for s in status.split(",")}
        expected = [
            a
            for a in allergies_of(dataset, patient["id"])
            if a.get("verification_status") != "entered-in-error"
            and ("inactive" if a.get("status") == "inactive" else "active") in wanted
        ]
        assert sorted(r["id"] for r in found) == sorted(f"allergy-{a['id']}" for a in expected)


async def test_read_and_id_search(warm_fhir: httpx.AsyncClient, dataset: SandboxDataset) -> None:
    allergy = dataset.endpoint("allergies")[0]
    read = await warm_fhir.get(f"/fhir/AllergyIntolerance/allergy-{allergy['id']}")
    assert read.status_code == 200
    assert read.json()["patient"]["reference"] == f"Patient/{allergy['patient']}"
    found = await all_pages(warm_fhir, f"/fhir/AllergyIntolerance?_id=allergy-{allergy['id']}")
    assert [r["id"] for r in found] == [f"allergy-{allergy['id']}"]
    for missing in ("allergy-1", "problem-5", "nothing"):
        assert (await warm_fhir.get(f"/fhir/AllergyIntolerance/{missing}")).status_code == 404


async def test_a_patient_is_required(warm_fhir: httpx.AsyncClient) -> None:
    response = await warm_fhir.get("/fhir/AllergyIntolerance?clinical-status=active")
    assert response.status_code == 400
    assert response.json()["resourceType"] == "OperationOutcome"


async def test_revinclude_adds_one_provenance_per_match(
    warm_fhir: httpx.AsyncClient, dataset: SandboxDataset
) -> None:
    patient = dataset.endpoint("patients")[0]
    bundle = (
        await warm_fhir.get(
            f"/fhir/AllergyIntolerance?patient={patient['id']}&_revinclude=Provenance:target"
        )
    ).json()
    matches = [e["resource"] for e in bundle["entry"] if e["search"]["mode"] == "match"]
    provenances = [e["resource"] for e in bundle["entry"] if e["search"]["mode"] == "include"]
    assert matches and len(provenances) == len(matches)
    targets = {p["target"][0]["reference"] for p in provenances}
    assert targets == {f"AllergyIntolerance/{m['id']}" for m in matches}
    provenance = provenances[0]
    read = await warm_fhir.get(f"/fhir/Provenance/{provenance['id']}")
    assert read.status_code == 200 and read.json()["target"] == provenance["target"]
    transmitter = next(a for a in provenance["agent"] if a["who"]["reference"] == "Device/facade")
    assert transmitter["onBehalfOf"]["reference"] == f"Organization/{dataset.practice_group_id}"
    assert (await warm_fhir.get("/fhir/Device/facade")).status_code == 200
