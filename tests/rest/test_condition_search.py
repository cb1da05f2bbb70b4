"""Condition: a patient's problems (problem list, health concerns) and the encounter
diagnoses billed on their appointments, exactly the sandbox's records; category searches skip
the vendor endpoint that cannot match."""

from __future__ import annotations

from typing import Any

import httpx

from facade.upstream.drchrono.sandbox.dataset import SandboxDataset
from facade.upstream.drchrono.sandbox.state import SandboxState
from mappings.drchrono.fields import APPOINTMENT_PARAMS
from tests.conftest import all_pages

CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"


def problems_of(dataset: SandboxDataset, patient_id: object) -> list[dict[str, Any]]:
    return [p for p in dataset.endpoint("problems") if str(p["patient"]) == str(patient_id)]


def diagnoses_of(dataset: SandboxDataset, patient_id: object) -> list[tuple[dict[str, Any], str]]:
    return [
        (a, code)
        for a in dataset.endpoint("appointments")
        if str(a["patient"]) == str(patient_id) and not a.get("deleted_flag")
        for code in dict.fromkeys(a.get("icd10_codes") or [])
    ]


def diagnosis_id(appointment: dict[str, Any], code: str) -> str:
    return f"encdx-{str(appointment['id']).replace('_', '.')}-{code}"


def expected_ids(dataset: SandboxDataset, patient_id: object) -> list[str]:
    return sorted(
        [f"problem-{p['id']}" for p in problems_of(dataset, patient_id)]
        + [diagnosis_id(a, c) for a, c in diagnoses_of(dataset, patient_id)]
    )


async def test_patient_search_returns_problems_and_encounter_diagnoses(
    warm_fhir: httpx.AsyncClient, dataset: SandboxDataset, sandbox: SandboxState
) -> None:
    for patient in dataset.endpoint("patients")[:6]:
        for reference in (str(patient["id"]), f"Patient/{patient['id']}"):
            before = len(sandbox.api_requests())
            found = await all_pages(warm_fhir, f"/fhir/Condition?patient={reference}")
            assert sorted(r["id"] for r in found) == expected_ids(dataset, patient["id"])
            assert all(r["subject"]["reference"] == f"Patient/{patient['id']}" for r in found)
            calls = sandbox.api_requests()[before:]
            assert {c.endpoint for c in calls} <= {"problems", "appointments"}
            assert all(c.query["patient"] == str(patient["id"]) for c in calls)
            for call in calls:
                if call.endpoint == "appointments":
                    assert {k: call.query[k] for k in APPOINTMENT_PARAMS} == APPOINTMENT_PARAMS
            # One list call per endpoint: the encounter diagnoses reuse the problems page.
            assert len([c for c in calls if c.endpoint == "problems"]) <= 1


async def test_category_searches_call_only_the_endpoint_that_can_match(
    warm_fhir: httpx.AsyncClient, dataset: SandboxDataset, sandbox: SandboxState
) -> None:
    for patient in dataset.endpoint("patients")[:4]:
        pid = patient["id"]
        before = len(sandbox.api_requests())
        found = await all_pages(
            warm_fhir, f"/fhir/Condition?patient={pid}&category=problem-list-item"
        )
        expected = [p for p in problems_of(dataset, pid) if p["category"] == "problem-list-item"]
        assert sorted(r["id"] for r in found) == sorted(f"problem-{p['id']}" for p in expected)
        assert {c.endpoint for c in sandbox.api_requests()[before:]} == {"problems"}

        found = await all_pages(
            warm_fhir, f"/fhir/Condition?patient={pid}&category={CATEGORY}|encounter-diagnosis"
        )
        assert sorted(r["id"] for r in found) == sorted(
            diagnosis_id(a, c) for a, c in diagnoses_of(dataset, pid)
        )
        for resource in found:
            assert resource["encounter"]["reference"].startswith("Encounter/encounter-")

        concerns = [
            p
            for p in problems_of(dataset, pid)
            if p["category"] == "health-concern" or p["problem_type"] == "sdoh"
        ]
        before = len(sandbox.api_requests())
        found = await all_pages(
            warm_fhir, f"/fhir/Condition?patient={pid}&category=health-concern,sdoh"
        )
        assert sorted(r["id"] for r in found) == sorted(f"problem-{p['id']}" for p in concerns)
        assert {c.endpoint for c in sandbox.api_requests()[before:]} <= {"problems"}


async def test_category_and_encounter(
    warm_fhir: httpx.AsyncClient, dataset: SandboxDataset
) -> None:
    patient = dataset.endpoint("patients")[0]
    appointment, _ = diagnoses_of(dataset, patient["id"])[0]
    encounter = f"Encounter/encounter-{str(appointment['id']).replace('_', '.')}"
    found = await all_pages(
        warm_fhir,
        f"/fhir/Condition?patient={patient['id']}&category=encounter-diagnosis"
        f"&encounter={encounter}",
    )
    assert sorted(r["id"] for r in found) == sorted(
        diagnosis_id(appointment, c) for c in dict.fromkeys(appointment["icd10_codes"])
    )


async def test_clinical_status_and_code(
    warm_fhir: httpx.AsyncClient, dataset: SandboxDataset
) -> None:
    patient = next(
        p
        for p in dataset.endpoint("patients")
        if {"active", "resolved"} <= {x["status"] for x in problems_of(dataset, p["id"])}
    )
    pid = patient["id"]
    found = await all_pages(
        warm_fhir,
        f"/fhir/Condition?patient={pid}&category=problem-list-item,health-concern"
        "&clinical-status=resolved,inactive",
    )
    expected = [p for p in problems_of(dataset, pid) if p["status"] in ("resolved", "inactive")]
    assert sorted(r["id"] for r in found) == sorted(f"problem-{p['id']}" for p in expected)

    problem = problems_of(dataset, pid)[0]
    code = problem["icd_code"]
    found = await all_pages(
        warm_fhir, f"/fhir/Condition?patient={pid}&code=http://hl7.org/fhir/sid/icd-10-cm|{code}"
    )
    expected_ids_ = {
        f"problem-{p['id']}" for p in problems_of(dataset, pid) if p["icd_code"] == code
    }
    expected_ids_ |= {diagnosis_id(a, c) for a, c in diagnoses_of(dataset, pid) if c == code}
    assert {r["id"] for r in found} == expected_ids_
    snomed = await all_pages(
        warm_fhir, f"/fhir/Condition?patient={pid}&code={problem['snomed_ct_code']}"
    )
    assert f"problem-{problem['id']}" in {r["id"] for r in snomed}


async def test_date_searches_with_comparators(
    warm_fhir: httpx.AsyncClient, dataset: SandboxDataset
) -> None:
    patient = dataset.endpoint("patients")[0]
    pid = patient["id"]
    problems = problems_of(dataset, pid)
    onsets = sorted(p["date_onset"] for p in problems if p["date_onset"])
    pivot = onsets[len(onsets) // 2]
    base = f"/fhir/Condition?patient={pid}&category=problem-list-item,health-concern"
    for prefix, keep in (
        ("ge", lambda d: d >= pivot),
        ("lt", lambda d: d < pivot),
        ("", lambda d: d == pivot),
    ):
        found = await all_pages(warm_fhir, f"{base}&onset-date={prefix}{pivot}")
        expected = [p for p in problems if p["date_onset"] and keep(p["date_onset"])]
        assert sorted(r["id"] for r in found) == sorted(f"problem-{p['id']}" for p in expected)

    recorded = sorted(p["date_diagnosis"] for p in problems if p["date_diagnosis"])[0]
    found = await all_pages(warm_fhir, f"{base}&recorded-date=le{recorded}")
    assert sorted(r["id"] for r in found) == sorted(
        f"problem-{p['id']}"
        for p in problems
        if p["date_diagnosis"] and p["date_diagnosis"] <= recorded
    )

    abated_patient = next(
        p
        for p in dataset.endpoint("patients")
        if any(x["abatement_date"] for x in problems_of(dataset, p["id"]))
    )
    abated = [x for x in problems_of(dataset, abated_patient["id"]) if x["abatement_date"]]
    found = await all_pages(
        warm_fhir,
        f"/fhir/Condition?patient={abated_patient['id']}&category=problem-list-item"
        f"&abatement-date=ge{abated[0]['abatement_date']}",
    )
    assert f"problem-{abated[0]['id']}" in {r["id"] for r in found}
    assert all(r.get("abatementDateTime", "") >= abated[0]["abatement_date"] for r in found)


async def test_read_and_id_search(
    warm_fhir: httpx.AsyncClient, dataset: SandboxDataset, sandbox: SandboxState
) -> None:
    problem = dataset.endpoint("problems")[0]
    read = await warm_fhir.get(f"/fhir/Condition/problem-{problem['id']}")
    assert read.status_code == 200
    assert read.json()["subject"]["reference"] == f"Patient/{problem['patient']}"
    appointment, code = diagnoses_of(dataset, problem["patient"])[0]
    before = len(sandbox.api_requests())
    read = await warm_fhir.get(f"/fhir/Condition/{diagnosis_id(appointment, code)}")
    assert read.status_code == 200
    body = read.json()
    assert body["code"]["coding"][0] == {
        "system": "http://hl7.org/fhir/sid/icd-10-cm",
        "code": code,
    }
    assert any(c.endpoint == "appointments" for c in sandbox.api_requests()[before:])
    found = await all_pages(
        warm_fhir,
        f"/fhir/Condition?_id=problem-{problem['id']},{diagnosis_id(appointment, code)}",
    )
    assert sorted(r["id"] for r in found) == sorted(
        [f"problem-{problem['id']}", diagnosis_id(appointment, code)]
    )
    for missing in ("problem-1", "encdx-1-E11.9", f"encdx-{appointment['id']}-Z00.0", "nothing"):
        assert (await warm_fhir.get(f"/fhir/Condition/{missing}")).status_code == 404


async def test_a_patient_is_required(warm_fhir: httpx.AsyncClient) -> None:
    response = await warm_fhir.get("/fhir/Condition?category=problem-list-item")
    assert response.status_code == 400


async def test_a_problem_entered_in_error_carries_no_status_and_no_abatement(
    warm_fhir: httpx.AsyncClient, dataset: SandboxDataset
) -> None:
    """A resolved problem later marked entered-in-error never held, so it never abated:
    neither clinicalStatus nor abatementDateTime (US Core con-4, con-5)."""
    problem = next(p for p in dataset.endpoint("problems") if p["abatement_date"])
    problem["verification_status"] = "entered-in-error"

    read = await warm_fhir.get(f"/fhir/Condition/problem-{problem['id']}")

    assert read.status_code == 200
    body = read.json()
    assert body["verificationStatus"]["coding"][0]["code"] == "entered-in-error"
    assert "clinicalStatus" not in body
    assert "abatementDateTime" not in body
    found = await all_pages(
        warm_fhir,
        f"/fhir/Condition?patient={problem['patient']}&abatement-date=ge1900-01-01",
    )
    assert f"problem-{problem['id']}" not in {r["id"] for r in found}
