"""Groups are practice data: a token in a patient's context cannot list, read or export a
Group (403, before any vendor call); a practitioner's user/ token sees every group, as it
sees every patient; backend services need system/Group, also to export one."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from facade.app import create_app
from facade.bulk.client import add_group
from facade.bulk.exports import BulkExports
from facade.runtime import Runtime
from facade.upstream.drchrono.sandbox.dataset import SandboxDataset
from facade.upstream.drchrono.sandbox.state import SandboxState
from tests.conftest import FACADE_BASE
from tests.tokens import token

KICKOFF = {"Accept": "application/fhir+json", "Prefer": "respond-async"}


@pytest.fixture
async def anonymous(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(runtime.settings, runtime)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=FACADE_BASE
    ) as client:
        yield client


@pytest.fixture
async def exports(runtime: Runtime) -> AsyncIterator[BulkExports]:
    assert runtime.exports is not None
    await runtime.exports.worker.start()
    yield runtime.exports
    await runtime.exports.worker.stop()


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


def doctors(dataset: SandboxDataset) -> list[str]:
    return [str(d["id"]) for d in dataset.endpoint("doctors")]


def patients(dataset: SandboxDataset) -> list[str]:
    return [str(p["id"]) for p in dataset.endpoint("patients")]


def every_group(dataset: SandboxDataset, *operator: str) -> set[str]:
    offices = {f"office-{o['id']}" for o in dataset.endpoint("offices")}
    return {f"doctor-{d}" for d in doctors(dataset)} | offices | set(operator)


#: Tokens whose only way to a Group is a patient's context: (scope, who logged in).
PATIENT_CONTEXT = [
    pytest.param("patient/*.rs launch/patient", "Patient", id="patient-login-patient-scopes"),
    pytest.param("patient/Group.rs launch/patient", "Patient", id="patient-login-group-scope"),
    pytest.param("user/*.rs", "Patient", id="patient-login-carrying-user-scopes"),
    pytest.param("user/Group.rs launch/patient", "Patient", id="patient-login-user-group-scope"),
    pytest.param("patient/*.rs launch/patient", "Practitioner", id="practitioner-patient-scopes"),
]


@pytest.mark.parametrize("scope,kind", PATIENT_CONTEXT)
async def test_a_patient_context_token_cannot_list_read_or_export_groups(
    anonymous: httpx.AsyncClient,
    runtime: Runtime,
    dataset: SandboxDataset,
    sandbox: SandboxState,
    scope: str,
    kind: str,
) -> None:
    mine = patients(dataset)[0]
    doctor = doctors(dataset)[0]
    user = f"Patient/{mine}" if kind == "Patient" else f"Practitioner/{doctor}"
    await add_group(runtime, "Attribution", [mine])
    access = bearer(token(runtime, scope, patient_id=mine, fhir_user=user))
    before = len(sandbox.request_log)
    attempts = [
        await anonymous.get("/fhir/Group", headers=access),
        await anonymous.get(f"/fhir/Group/doctor-{doctor}", headers=access),
        await anonymous.get("/fhir/Group/Attribution", headers=access),
        await anonymous.get(f"/fhir/Group/doctor-{doctor}/$export", headers={**access, **KICKOFF}),
        await anonymous.post(
            "/fhir/Group/Attribution/$export",
            json={"resourceType": "Parameters"},
            headers={**access, **KICKOFF},
        ),
    ]
    for response in attempts:
        assert response.status_code == 403, (response.request.url, response.text)
        outcome = response.json()
        assert outcome["resourceType"] == "OperationOutcome"
        assert outcome["issue"][0]["code"] == "forbidden"
        assert mine not in response.text  # no member list, not even one's own
        assert response.headers["X-Upstream-Calls"] == "0"
    assert sandbox.request_log[before:] == [], "refused before asking the vendor"
    records = [r for r in runtime.audit.query(patient_id=mine) if r.resource_type == "Group"]
    assert records and all(r.outcome != "success" for r in records)


async def test_a_practitioner_user_sees_every_group_of_the_practice(
    anonymous: httpx.AsyncClient, runtime: Runtime, dataset: SandboxDataset
) -> None:
    """user/ tokens see the practice's patients, so a practitioner sees every panel, not
    only its own; an EHR launch's patient context does not narrow that."""
    first, second = doctors(dataset)[:2]
    await add_group(runtime, "Attribution", patients(dataset)[:2])
    for scope, patient in (("user/Group.rs", ""), ("user/*.rs launch", patients(dataset)[3])):
        access = bearer(
            token(runtime, scope, patient_id=patient, fhir_user=f"Practitioner/{first}")
        )
        listed = await anonymous.get("/fhir/Group", headers=access)
        assert listed.status_code == 200, listed.text
        found = {e["resource"]["id"] for e in listed.json()["entry"]}
        assert found == every_group(dataset, "Attribution")
        other_panel = await anonymous.get(f"/fhir/Group/doctor-{second}", headers=access)
        assert other_panel.status_code == 200
        expected = {
            str(p["id"]) for p in dataset.endpoint("patients") if p["doctor"] == int(second)
        }
        members = {m["entity"]["reference"] for m in other_panel.json()["member"]}
        assert members == {f"Patient/{p}" for p in expected}


@pytest.mark.parametrize(
    "scope,fhir_user",
    [
        pytest.param("user/Patient.rs", "Practitioner/{doctor}", id="no-group-scope"),
        pytest.param("user/Group.rs", "", id="no-practitioner-behind-the-token"),
    ],
)
async def test_a_user_token_without_group_scope_or_practitioner_sees_no_group(
    anonymous: httpx.AsyncClient, runtime: Runtime, dataset: SandboxDataset, scope, fhir_user
) -> None:
    doctor = doctors(dataset)[0]
    access = bearer(token(runtime, scope, fhir_user=fhir_user.format(doctor=doctor)))
    assert (await anonymous.get("/fhir/Group", headers=access)).status_code == 403
    assert (await anonymous.get(f"/fhir/Group/doctor-{doctor}", headers=access)).status_code == 403


async def test_a_practitioner_cannot_export_a_group(
    anonymous: httpx.AsyncClient, runtime: Runtime, dataset: SandboxDataset
) -> None:
    doctor = doctors(dataset)[0]
    access = bearer(token(runtime, "user/*.rs", fhir_user=f"Practitioner/{doctor}"))
    response = await anonymous.get(
        f"/fhir/Group/doctor-{doctor}/$export", headers={**access, **KICKOFF}
    )
    assert response.status_code == 403
    assert response.json()["resourceType"] == "OperationOutcome"


async def test_a_backend_service_reads_and_exports_groups_with_system_group_scope(
    anonymous: httpx.AsyncClient,
    runtime: Runtime,
    dataset: SandboxDataset,
    exports: BulkExports,
) -> None:
    doctor = doctors(dataset)[0]
    reader = bearer(token(runtime, "system/Group.rs"))
    listed = await anonymous.get("/fhir/Group", headers=reader)
    assert listed.status_code == 200
    assert {e["resource"]["id"] for e in listed.json()["entry"]} == every_group(dataset)
    assert (await anonymous.get(f"/fhir/Group/doctor-{doctor}", headers=reader)).status_code == 200

    path = f"/fhir/Group/doctor-{doctor}/$export?_type=Patient"
    without_group = bearer(token(runtime, "system/Patient.rs"))
    refused = await anonymous.get(path, headers={**without_group, **KICKOFF})
    assert refused.status_code == 403
    assert refused.json()["resourceType"] == "OperationOutcome"
    exporter = bearer(token(runtime, "system/Patient.rs system/Group.rs"))
    accepted = await anonymous.get(path, headers={**exporter, **KICKOFF})
    assert accepted.status_code == 202, accepted.text
    await exports.worker.wait(accepted.headers["content-location"].rsplit("/", 1)[1])
