"""Procedure, Device and Coverage: exactly the sandbox's records for a patient, the vendor
calls made, dates with comparators, reads; payer Organizations are readable."""

from __future__ import annotations

from typing import Any

import httpx

from facade.upstream.drchrono.sandbox.dataset import SandboxDataset
from facade.upstream.drchrono.sandbox.state import SandboxState
from tests.conftest import all_pages


def of(dataset: SandboxDataset, endpoint: str, patient_id: object) -> list[dict[str, Any]]:
    return [r for r in dataset.endpoint(endpoint) if str(r["patient"]) == str(patient_id)]


def procedure_days(dataset: SandboxDataset, patient_id: object) -> dict[str, str]:
    days = {f"procedure-{p['id']}": p["date"] for p in of(dataset, "procedures", patient_id)}
    for i in of(dataset, "patient_interventions", patient_id):
        days[f"intervention-{i['id']}"] = i["effective_time"][:10]
    return days


def ids(resources: list[dict[str, Any]]) -> list[str]:
    return sorted(r["id"] for r in resources)


async def test_procedures_of_a_patient(
    warm_fhir: httpx.AsyncClient, dataset: SandboxDataset, sandbox: SandboxState
) -> None:
    for patient in dataset.endpoint("patients")[:6]:
        for reference in (str(patient["id"]), f"Patient/{patient['id']}"):
            before = len(sandbox.api_requests())
            found = await all_pages(warm_fhir, f"/fhir/Procedure?patient={reference}")
            assert ids(found) == sorted(procedure_days(dataset, patient["id"]))
            calls = sandbox.api_requests()[before:]
            assert {c.endpoint for c in calls} <= {"procedures", "patient_interventions"}
            assert all(c.query["patient"] == str(patient["id"]) for c in calls)


async def test_procedure_date_comparators_code_and_status(
    warm_fhir: httpx.AsyncClient, dataset: SandboxDataset
) -> None:
    for patient in dataset.endpoint("patients")[:3]:
        pid = patient["id"]
        days = procedure_days(dataset, pid)
        pivot = sorted(days.values())[len(days) // 2]
        for prefix, keep in (
            ("ge", lambda d, p=pivot: d >= p),
            ("gt", lambda d, p=pivot: d > p),
            ("le", lambda d, p=pivot: d <= p),
            ("lt", lambda d, p=pivot: d < p),
            ("", lambda d, p=pivot: d == p),
        ):
            found = await all_pages(
                warm_fhir, f"/fhir/Procedure?patient={pid}&date={prefix}{pivot}"
            )
            assert ids(found) == sorted(i for i, d in days.items() if keep(d)), prefix
        procedure = of(dataset, "procedures", pid)[0]
        system = {
            "C": "http://www.ama-assn.org/go/cpt",
            "H": "urn:oid:2.16.840.1.113883.6.285",
            "S": "http://snomed.info/sct",
        }[procedure["procedure_type"]]
        found = await all_pages(
            warm_fhir,
            f"/fhir/Procedure?patient={pid}&code={system}|{procedure['code']}"
            f"&date=ge{procedure['date']}",
        )
        assert f"procedure-{procedure['id']}" in ids(found)
        assert all(r["code"]["coding"][0]["code"] == procedure["code"] for r in found)
        done = await all_pages(warm_fhir, f"/fhir/Procedure?patient={pid}&status=completed")
        assert ids(done) == sorted(days)
        assert await all_pages(warm_fhir, f"/fhir/Procedure?patient={pid}&status=not-done") == []


async def test_procedure_read(warm_fhir: httpx.AsyncClient, dataset: SandboxDataset) -> None:
    procedure = dataset.endpoint("procedures")[0]
    intervention = dataset.endpoint("patient_interventions")[0]
    for resource_id in (f"procedure-{procedure['id']}", f"intervention-{intervention['id']}"):
        read = await warm_fhir.get(f"/fhir/Procedure/{resource_id}")
        assert read.status_code == 200 and read.json()["id"] == resource_id
    found = await all_pages(warm_fhir, f"/fhir/Procedure?_id=procedure-{procedure['id']}")
    assert ids(found) == [f"procedure-{procedure['id']}"]
    assert (await warm_fhir.get("/fhir/Procedure/procedure-1")).status_code == 404


async def test_devices_of_a_patient_and_the_facade_device(
    warm_fhir: httpx.AsyncClient, dataset: SandboxDataset, sandbox: SandboxState
) -> None:
    owners = {str(d["patient"]) for d in dataset.endpoint("implantable_devices")}
    patients = [p for p in dataset.endpoint("patients") if str(p["id"]) in owners][:3]
    patients += [p for p in dataset.endpoint("patients") if str(p["id"]) not in owners][:1]
    for patient in patients:
        for reference in (str(patient["id"]), f"Patient/{patient['id']}"):
            before = len(sandbox.api_requests())
            found = await all_pages(warm_fhir, f"/fhir/Device?patient={reference}")
            assert ids(found) == sorted(
                f"device-{d['id']}" for d in of(dataset, "implantable_devices", patient["id"])
            )
            calls = sandbox.api_requests()[before:]
            assert [c.endpoint for c in calls] in ([], ["implantable_devices"])
    device = dataset.endpoint("implantable_devices")[0]
    read = (await warm_fhir.get(f"/fhir/Device/device-{device['id']}")).json()
    assert read["udiCarrier"][0]["carrierHRF"] == device["udi"]
    assert read["udiCarrier"][0]["deviceIdentifier"] in device["udi"]
    assert read["type"]["text"] == device["gmdn_pt_name"]
    facade = await warm_fhir.get("/fhir/Device/facade")
    assert facade.status_code == 200
    assert "patient" not in facade.json()


async def test_coverage_of_a_patient_and_its_payers(
    warm_fhir: httpx.AsyncClient, dataset: SandboxDataset, sandbox: SandboxState
) -> None:
    slots = ("primary_insurance", "secondary_insurance", "tertiary_insurance")
    for patient in dataset.endpoint("patients")[:6]:
        pid = patient["id"]
        expected = [
            f"coverage-{pid}-{order}"
            for order, slot in enumerate(slots, 1)
            if patient[slot]["insurance_company"] or patient[slot]["insurance_id_number"]
        ]
        for reference in (str(pid), f"Patient/{pid}"):
            before = len(sandbox.api_requests())
            found = await all_pages(warm_fhir, f"/fhir/Coverage?patient={reference}")
            assert ids(found) == sorted(expected)
            calls = sandbox.api_requests()[before:]
            assert len(calls) <= 1 and all(c.path == f"/api/patients/{pid}" for c in calls)
        for coverage in found:
            order = coverage["order"]
            plan = patient[slots[order - 1]]
            assert coverage["subscriberId"] == plan["insurance_id_number"]
            assert coverage["beneficiary"]["reference"] == f"Patient/{pid}"
            payer = await warm_fhir.get(f"/fhir/{coverage['payor'][0]['reference']}")
            assert payer.status_code == 200
            assert payer.json()["name"] == plan["insurance_company"]
            read = await warm_fhir.get(f"/fhir/Coverage/{coverage['id']}")
            assert read.json() == coverage
    first = dataset.endpoint("patients")[0]["id"]
    assert (await warm_fhir.get(f"/fhir/Organization/payer-{first}-3")).status_code in (200, 404)
    assert (await warm_fhir.get("/fhir/Organization/payer-1-1")).status_code == 404
    assert (await warm_fhir.get(f"/fhir/Coverage/coverage-{first}-9")).status_code == 404
    assert (
        await warm_fhir.get(f"/fhir/Organization/{dataset.practice_group_id}")
    ).status_code == 200
