"""What an export contains: exactly the sandbox's records, narrowed by _type, _since,
_typeFilter, a Group or a patient list; and what it costs in vendor calls.

The tests that count DrChrono's endpoints and parameters run over DrChrono only (CareCloud's
counts and calls: test_by_patient.py); the rest run once per vendor."""

from __future__ import annotations

import math
from typing import Any

from facade.runtime import Runtime
from tests.bulk.conftest import download, export
from tests.bulk.test_export_references import PRACTICE_TYPES
from tests.fhir_models import assert_fhir_resources
from tests.vendors import VENDORS, patient_ids, practice_group, vendor_calls


def patient_of(resource: dict[str, Any]) -> str | None:
    if resource["resourceType"] == "Patient":
        return str(resource["id"])
    for key in ("subject", "patient", "beneficiary"):
        value = resource.get(key)
        if isinstance(value, dict) and "reference" in value:
            return str(value["reference"]).rpartition("/")[2]
    return None


def ids(resources: list[dict]) -> set[str]:
    return {r["id"] for r in resources}


async def test_system_export_counts_equal_the_sandbox_records(fhir, runtime: Runtime, exports):
    data = runtime.sandbox.dataset
    got = await download(fhir, await export(fhir, exports, "$export"))
    assert ids(got["Patient"]) == {str(p["id"]) for p in data.endpoint("patients")}
    assert len(got["AllergyIntolerance"]) == len(data.endpoint("allergies"))
    assert len(got["MedicationRequest"]) == len(data.endpoint("medications"))
    assert len(got["Device"]) == len(data.endpoint("implantable_devices"))
    assert ids(got["Practitioner"]) == {str(d["id"]) for d in data.endpoint("doctors")}
    exams = {o["id"] for o in got["Observation"] if o["id"].startswith("exam-")}
    assert exams == {f"exam-{e['id']}" for e in data.endpoint("patient_physical_exams")}
    # Every EKG in the sandbox was taken on an exam day: its results are that day's findings.
    ekgs = [
        r for r in got["DiagnosticReport"] if r["category"][0]["coding"][0]["code"] == "LP29708-2"
    ]
    assert ekgs and all(set(r["result"][0]["reference"].split("/")[1:]) <= exams for r in ekgs)
    # Every exported resource has exactly one Provenance.
    targets = [p["target"][0]["reference"] for p in got["Provenance"]]
    assert len(targets) == len(set(targets))
    exported = sum(len(v) for t, v in got.items() if t not in ("Provenance",))
    compartment = sum(
        len(v)
        for t, v in got.items()
        if t not in ("Provenance", "Practitioner", "PractitionerRole", "Organization", "Location")
    )
    assert len(targets) == compartment and exported > compartment
    assert assert_fhir_resources(r for lines in got.values() for r in lines) == exported + len(
        targets
    )


async def test_system_export_reads_each_listing_once_at_the_largest_page(fhir, runtime, exports):
    runtime.sandbox.request_log.clear()
    await runtime.service.context()
    runtime.sandbox.request_log.clear()
    await export(fhir, exports, "$export")
    requests = runtime.sandbox.api_requests()
    listed = [r for r in requests if r.endpoint not in ("users.current",)]
    largest = {"clinical_notes": "20"}  # the endpoint's own cap ("maximum page size is 20")
    assert all(
        r.query.get("page_size") == largest.get(r.endpoint, "50" if r.verbose else "250")
        or r.endpoint in ("doctors", "offices")
        for r in listed
    )
    # No URL twice: every vendor page is fetched once per export.
    urls = [(r.path, tuple(sorted(r.query.items()))) for r in listed]
    repeated = [u for u, n in __import__("collections").Counter(urls).items() if n > 1]
    assert not repeated
    # Lower bound: per endpoint ceil(records/page size); the sandbox is small, one page each.
    appointments = [r for r in listed if r.endpoint == "appointments"]
    expected = math.ceil(len(runtime.sandbox.dataset.endpoint("appointments")) / 50)
    assert len(appointments) == expected  # shared by Encounter, Condition and vital signs


@VENDORS
async def test_type_limits_the_export(fhir, exports):
    manifest = await export(fhir, exports, "$export", params={"_type": "Patient,Immunization"})
    assert {o["type"] for o in manifest["output"]} == {"Patient", "Immunization"}


async def test_since_exports_only_records_changed_after_it(fhir, runtime, exports):
    everything = await download(
        fhir, await export(fhir, exports, "$export", params={"_type": "Patient"})
    )
    stamps = sorted(p["meta"]["lastUpdated"] for p in everything["Patient"])
    since = stamps[len(stamps) // 2]
    changed = await download(
        fhir, await export(fhir, exports, "$export", params={"_type": "Patient", "_since": since})
    )
    expected = {p["id"] for p in everything["Patient"] if p["meta"]["lastUpdated"] > since}
    assert expected and ids(changed.get("Patient", [])) == expected
    sent = [r for r in runtime.sandbox.api_requests("patients") if "since" in r.query]
    assert sent, "_since was pushed down to the vendor"


async def test_type_filter_runs_the_search_machinery(fhir, runtime, exports):
    everything = await download(
        fhir, await export(fhir, exports, "$export", params={"_type": "Observation"})
    )
    runtime.sandbox.request_log.clear()
    filtered = await download(
        fhir,
        await export(
            fhir,
            exports,
            "$export",
            params={"_type": "Observation", "_typeFilter": "Observation?category=vital-signs"},
        ),
    )
    vital = {
        o["id"]
        for o in everything["Observation"]
        if any(
            c.get("code") == "vital-signs"
            for cat in o.get("category", [])
            for c in cat.get("coding", [])
        )
    }
    assert vital and ids(filtered["Observation"]) == vital
    # Sources that cannot produce vital signs were pruned: only appointments were listed.
    assert {r.endpoint for r in runtime.sandbox.api_requests()} <= {"appointments"}


@VENDORS
async def test_group_export_returns_exactly_the_members_data(fhir, runtime, exports):
    system = await download(fhir, await export(fhir, exports, "$export"))
    group_id, members = practice_group(runtime.sandbox)
    group = await download(fhir, await export(fhir, exports, f"Group/{group_id}/$export"))
    assert ids(group["Patient"]) == members
    for resource_type, resources in group.items():
        if resource_type in ("Provenance", *PRACTICE_TYPES):
            continue  # the practice resources the lines reference: test_export_references.py
        assert all(patient_of(r) in members for r in resources), resource_type
        if resource_type in system:
            # Sources the practice-wide plan skips (no bulk listing yet) only add to this.
            listed = {r["id"].split("-")[0] for r in system[resource_type]}
            expected = {r["id"] for r in system[resource_type] if patient_of(r) in members}
            kept = {
                r["id"]
                for r in resources
                if r["id"].split("-")[0] in listed or resource_type == "Patient"
            }
            assert kept == expected, resource_type


@VENDORS
async def test_patient_export_of_a_patient_list_goes_per_patient(fhir, runtime, exports):
    system = await download(fhir, await export(fhir, exports, "Patient/$export"))
    everyone = patient_ids(runtime.sandbox)
    chosen = everyone[:2]
    runtime.sandbox.request_log.clear()
    body = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "patient", "valueReference": {"reference": f"Patient/{p}"}} for p in chosen
        ],
    }
    got = await download(fhir, await export(fhir, exports, "Patient/$export", body=body))
    assert ids(got["Patient"]) == set(chosen)
    for resource_type, resources in system.items():
        if resource_type in ("Provenance", *PRACTICE_TYPES):
            continue
        listed = {r["id"].split("-")[0] for r in resources}
        expected = {r["id"] for r in resources if patient_of(r) in chosen}
        kept = {
            r["id"]
            for r in got.get(resource_type, [])
            if r["id"].split("-")[0] in listed or resource_type == "Patient"
        }
        assert kept == expected, resource_type
    # Per patient: every request that names a patient (a list's filter, a record's path)
    # names one of the chosen patients.
    named = [
        {v.lower() for v in (*r.query.values(), *r.path.split("/"))} & set(everyone)
        for r in vendor_calls(runtime.sandbox)
    ]
    assert any(named) and all(n <= set(chosen) for n in named)
