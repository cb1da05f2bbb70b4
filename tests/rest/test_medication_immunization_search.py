"""MedicationRequest and Immunization: a patient's medications and vaccine records, exactly
the sandbox's records, from one vendor list call each, with the SHALL/SHOULD combinations."""

from __future__ import annotations

from typing import Any

import httpx

from facade.upstream.drchrono.sandbox.dataset import SandboxDataset
from facade.upstream.drchrono.sandbox.state import SandboxState
from tests.conftest import all_pages

ALL_INTENTS = "proposal,plan,order,original-order,reflex-order,filler-order,instance-order,option"
ALL_STATUSES = "active,on-hold,cancelled,completed,entered-in-error,stopped,draft,unknown"
ORDERED = {
    "Ordered",
    "Electronic eRx Sent",
    "Phoned into Pharmacy",
    "Faxed to Pharmacy",
    "Paper Rx",
    "Prescription Printed",
    "Administered during visit",
    "Discontinued",
}


def medications_of(dataset: SandboxDataset, patient_id: object) -> list[dict[str, Any]]:
    return [
        m
        for m in dataset.endpoint("medications")
        if str(m["patient"]) == str(patient_id) and m["name"] != "No Known Medications"
    ]


def vaccines_of(dataset: SandboxDataset, patient_id: object) -> list[dict[str, Any]]:
    return [
        v
        for v in dataset.endpoint("patient_vaccine_records")
        if str(v["patient"]) == str(patient_id)
    ]


def ids(resources: list[dict[str, Any]]) -> list[str]:
    return sorted(r["id"] for r in resources)


async def test_intent_or_lists_return_every_medication_from_one_call(
    warm_fhir: httpx.AsyncClient, dataset: SandboxDataset, sandbox: SandboxState
) -> None:
    for patient in dataset.endpoint("patients")[:6]:
        for reference in (str(patient["id"]), f"Patient/{patient['id']}"):
            expected = sorted(
                f"medication-{m['id']}" for m in medications_of(dataset, patient["id"])
            )
            before = len(sandbox.api_requests())
            found = await all_pages(
                warm_fhir, f"/fhir/MedicationRequest?patient={reference}&intent={ALL_INTENTS}"
            )
            assert ids(found) == expected
            calls = sandbox.api_requests()[before:]
            assert [c.endpoint for c in calls] in ([], ["medications"])
            assert all(c.query["patient"] == str(patient["id"]) for c in calls)
            found = await all_pages(
                warm_fhir,
                f"/fhir/MedicationRequest?patient={reference}&intent={ALL_INTENTS}"
                f"&status={ALL_STATUSES}",
            )
            assert ids(found) == expected
            assert all(r["subject"]["reference"] == f"Patient/{patient['id']}" for r in found)


async def test_intent_and_status_filter(
    warm_fhir: httpx.AsyncClient, dataset: SandboxDataset
) -> None:
    for patient in dataset.endpoint("patients")[:6]:
        pid = patient["id"]
        medications = medications_of(dataset, pid)
        orders = await all_pages(warm_fhir, f"/fhir/MedicationRequest?patient={pid}&intent=order")
        assert ids(orders) == sorted(
            f"medication-{m['id']}" for m in medications if m["order_status"] in ORDERED
        )
        plans = await all_pages(warm_fhir, f"/fhir/MedicationRequest?patient={pid}&intent=plan")
        assert ids(plans) == sorted(
            f"medication-{m['id']}" for m in medications if m["order_status"] not in ORDERED
        )
        active = await all_pages(
            warm_fhir, f"/fhir/MedicationRequest?patient={pid}&intent=order,plan&status=active"
        )
        assert ids(active) == sorted(
            f"medication-{m['id']}"
            for m in medications
            if m["status"] == "active"
            and not m["date_stopped_taking"]
            and m["order_status"] not in ("Administered during visit", "Discontinued")
        )


async def test_medication_request_read_and_id(
    warm_fhir: httpx.AsyncClient, dataset: SandboxDataset
) -> None:
    medication = medications_of(dataset, dataset.endpoint("patients")[0]["id"])[0]
    read = await warm_fhir.get(f"/fhir/MedicationRequest/medication-{medication['id']}")
    assert read.status_code == 200
    body = read.json()
    assert body["medicationCodeableConcept"]["text"] == medication["name"]
    found = await all_pages(warm_fhir, f"/fhir/MedicationRequest?_id=medication-{medication['id']}")
    assert ids(found) == [f"medication-{medication['id']}"]
    assert (await warm_fhir.get("/fhir/MedicationRequest/medication-1")).status_code == 404
    include = await warm_fhir.get(
        f"/fhir/MedicationRequest?patient={medication['patient']}&intent=order"
        "&_include=MedicationRequest:medication"
    )
    assert include.status_code == 400


async def test_immunizations_of_a_patient_from_one_call(
    warm_fhir: httpx.AsyncClient, dataset: SandboxDataset, sandbox: SandboxState
) -> None:
    for patient in dataset.endpoint("patients")[:6]:
        for reference in (str(patient["id"]), f"Patient/{patient['id']}"):
            before = len(sandbox.api_requests())
            found = await all_pages(warm_fhir, f"/fhir/Immunization?patient={reference}")
            assert ids(found) == sorted(
                f"vaccine-{v['id']}" for v in vaccines_of(dataset, patient["id"])
            )
            calls = sandbox.api_requests()[before:]
            assert [c.endpoint for c in calls] in ([], ["patient_vaccine_records"])
            assert all(r["patient"]["reference"] == f"Patient/{patient['id']}" for r in found)


async def test_immunization_status_and_date(
    warm_fhir: httpx.AsyncClient, dataset: SandboxDataset
) -> None:
    patient = next(
        p
        for p in dataset.endpoint("patients")
        if {"CP", "RE"} <= {v["completion_status"] for v in vaccines_of(dataset, p["id"])}
    )
    pid = patient["id"]
    vaccines = vaccines_of(dataset, pid)
    not_done = await all_pages(warm_fhir, f"/fhir/Immunization?patient={pid}&status=not-done")
    assert ids(not_done) == sorted(
        f"vaccine-{v['id']}" for v in vaccines if v["completion_status"] in ("RE", "NA")
    )
    assert all(r["statusReason"] for r in not_done)
    days = sorted(v["administered_start"][:10] for v in vaccines)
    pivot = days[len(days) // 2]
    for prefix, keep in (
        ("ge", lambda d: d >= pivot),
        ("lt", lambda d: d < pivot),
        ("", lambda d: d == pivot),
    ):
        found = await all_pages(warm_fhir, f"/fhir/Immunization?patient={pid}&date={prefix}{pivot}")
        assert ids(found) == sorted(
            f"vaccine-{v['id']}" for v in vaccines if keep(v["administered_start"][:10])
        )


async def test_immunization_read(warm_fhir: httpx.AsyncClient, dataset: SandboxDataset) -> None:
    vaccine = dataset.endpoint("patient_vaccine_records")[0]
    read = await warm_fhir.get(f"/fhir/Immunization/vaccine-{vaccine['id']}")
    assert read.status_code == 200
    body = read.json()
    assert body["vaccineCode"]["coding"][0] == {
        "system": "http://hl7.org/fhir/sid/cvx",
        "code": vaccine["cvx_code"],
    }
    assert body["occurrenceDateTime"].startswith(vaccine["administered_start"])
    assert (await warm_fhir.get("/fhir/Immunization/vaccine-1")).status_code == 404
    assert (await warm_fhir.get("/fhir/Immunization?status=completed")).status_code == 400
