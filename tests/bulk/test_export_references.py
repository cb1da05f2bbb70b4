"""Patient and Group exports carry the practice resources their lines reference
(Practitioner, Organization, Location, PractitionerRole, payer Organizations), each once,
so a receiver can resolve every reference; and what that costs in vendor calls."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from facade.upstream.drchrono.sandbox.state import SandboxLimits
from tests.bulk.conftest import (
    crash_at,
    download,
    export,
    finished,
    job_id_of,
    kick_off,
)
from tests.tokens import token

PRACTICE_TYPES = ("Practitioner", "PractitionerRole", "Organization", "Location")


def references(value: Any) -> set[str]:
    """Every `Type/id` reference to a practice type anywhere in `value`."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "reference" and str(item).split("/")[0] in PRACTICE_TYPES:
                found.add(str(item))
            found |= references(item)
    elif isinstance(value, list):
        for item in value:
            found |= references(item)
    return found


def doctor_group(runtime: Any) -> tuple[str, set[str]]:
    doctor = str(runtime.sandbox.dataset.endpoint("doctors")[0]["id"])
    members = {
        str(p["id"])
        for p in runtime.sandbox.dataset.endpoint("patients")
        if str(p.get("doctor")) == doctor
    }
    assert members
    return f"Group/doctor-{doctor}/$export", members


def first_patients(runtime: Any) -> dict[str, Any]:
    chosen = [str(p["id"]) for p in runtime.sandbox.dataset.endpoint("patients")[:2]]
    return {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "patient", "valueReference": {"reference": f"Patient/{p}"}} for p in chosen
        ],
    }


def assert_every_practice_reference_resolves(
    got: dict[str, list[dict]], types: tuple[str, ...] = PRACTICE_TYPES
) -> None:
    """Every reference to one of `types` (the practice types the export holds) resolves."""
    lines = [r for resources in got.values() for r in resources]
    exported = Counter(f"{r['resourceType']}/{r['id']}" for r in lines)
    made = {r for line in lines for r in references(line) if r.split("/")[0] in types}
    assert made, "the export's lines reference practice resources"
    assert {r.split("/")[0] for r in made} >= {"Practitioner", "Organization", "Location"} & {
        *types
    }
    assert sorted(made - set(exported)) == []
    practice = {k: n for k, n in exported.items() if k.split("/")[0] in PRACTICE_TYPES}
    assert all(n == 1 for n in practice.values()), "each is written once per export"
    # Only what is referenced (and the referenced Practitioners' roles): not the whole
    # practice list.
    assert set(practice) <= made | {p for p in practice if p.startswith("PractitionerRole/")}


@pytest.mark.parametrize("level", ["group", "patient", "patient-list"])
async def test_every_practice_reference_in_the_export_resolves_to_a_line(
    fhir, runtime, exports, level
):
    if level == "group":
        manifest = await export(fhir, exports, doctor_group(runtime)[0])
    elif level == "patient":
        manifest = await export(fhir, exports, "Patient/$export")
    else:
        manifest = await export(fhir, exports, "Patient/$export", body=first_patients(runtime))
    got = await download(fhir, manifest)
    assert_every_practice_reference_resolves(got)
    # The exported Practitioners' roles come with them (where and for whom they work).
    roles = {r["practitioner"]["reference"] for r in got.get("PractitionerRole", [])}
    assert roles and roles <= {f"Practitioner/{p['id']}" for p in got["Practitioner"]}
    # Payer Organizations (Coverage.payor) come with the Coverage that names them.
    payors = {p["reference"] for c in got["Coverage"] for p in c["payor"]}
    organizations = {o["id"]: o for o in got["Organization"]}
    assert payors and all(organizations[p.split("/")[1]]["name"] for p in payors)


async def test_a_group_export_of_practitioners_alone_returns_only_practitioners(
    fhir, runtime, exports
):
    path, members = doctor_group(runtime)
    manifest = await export(fhir, exports, path, params={"_type": "Practitioner"})
    got = await download(fhir, manifest)
    assert set(got) == {"Practitioner"}
    # The members' own practitioner(s), not the practice's whole list.
    doctors = {
        str(p["doctor"])
        for p in runtime.sandbox.dataset.endpoint("patients")
        if str(p["id"]) in members
    }
    assert {p["id"] for p in got["Practitioner"]} == doctors


@pytest.mark.parametrize("practice_type", ["Organization", "Location"])
async def test_a_group_export_accepts_every_practice_type(fhir, runtime, exports, practice_type):
    path, _ = doctor_group(runtime)
    response = await kick_off(fhir, path, params={"_type": f"Encounter,{practice_type}"})
    got = await download(fhir, await finished(fhir, exports, job_id_of(response)))
    assert set(got) == {"Encounter", practice_type}
    assert_every_practice_reference_resolves(got, (practice_type,))


async def test_a_practice_type_the_token_does_not_grant_is_refused(fhir, runtime, exports):
    path, _ = doctor_group(runtime)
    narrow = token(runtime, "system/Group.rs system/Patient.rs system/Condition.rs")
    response = await kick_off(
        fhir, path, params={"_type": "Practitioner"}, headers={"Authorization": f"Bearer {narrow}"}
    )
    assert response.status_code == 403
    assert "Practitioner" in response.json()["issue"][0]["details"]["text"]
    # Without _type, the export holds what is granted: no Practitioner lines.
    job = job_id_of(await kick_off(fhir, path, headers={"Authorization": f"Bearer {narrow}"}))
    await exports.worker.wait(job)
    status = await fhir.get(
        f"/fhir/$export-status/{job}", headers={"Authorization": f"Bearer {narrow}"}
    )
    assert {o["type"] for o in status.json()["output"]} == {"Patient", "Condition"}


async def test_the_references_cost_at_most_one_vendor_call(fhir, runtime, exports):
    path, _ = doctor_group(runtime)
    clinical = "Patient,Condition,Encounter,Immunization,Coverage"
    await export(fhir, exports, path, params={"_type": clinical})  # warm the practice lists
    runtime.sandbox.request_log.clear()
    await export(fhir, exports, path, params={"_type": clinical})
    without = len(runtime.sandbox.api_requests())
    runtime.sandbox.request_log.clear()
    await export(fhir, exports, path, params={"_type": clinical + "," + ",".join(PRACTICE_TYPES)})
    with_references = len(runtime.sandbox.api_requests())
    assert with_references - without <= 1


@pytest.fixture
def sandbox_limits() -> SandboxLimits:
    # Small vendor pages, so a practice-wide Patient export has pages to checkpoint between.
    return SandboxLimits(burst_per_second=None, page_size_max=7, verbose_page_size_max=4)


async def test_a_crashed_patient_export_resumes_with_its_references(fhir, runtime, exports):
    reference = await export(fhir, exports, "Patient/$export")
    expected = await download(fhir, reference)
    exports.runner.hook = crash_at(9)
    job = job_id_of(await kick_off(fhir, "Patient/$export"))
    await exports.worker.wait(job)
    assert exports.store.job(job).state == "running"  # died mid-export
    states = [part.state for part in exports.store.parts(job)]
    assert "done" in states and states[-1] == "pending"  # after parts that noted references
    await exports.worker.stop()
    exports.runner.hook = None
    await exports.worker.start()
    resumed = await download(fhir, await finished(fhir, exports, job))
    assert_every_practice_reference_resolves(resumed)
    for practice_type in PRACTICE_TYPES:
        assert sorted(r["id"] for r in resumed.get(practice_type, [])) == sorted(
            r["id"] for r in expected.get(practice_type, [])
        ), practice_type
