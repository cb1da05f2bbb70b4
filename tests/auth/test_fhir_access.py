"""Access to FHIR data is what the token grants and nothing more: no token is 401, a type
not granted is 403, another patient's data does not exist for a patient token, granular
scopes narrow results and vendor calls, and every interaction is audited."""

from __future__ import annotations

import httpx
import pytest

from facade.app import create_app
from facade.runtime import Runtime
from facade.upstream.drchrono.sandbox.dataset import SandboxDataset
from facade.upstream.drchrono.sandbox.state import SandboxState
from tests.conftest import FACADE_BASE, all_pages
from tests.tokens import TEST_CLIENT, operator, token


@pytest.fixture
async def anonymous(runtime: Runtime) -> httpx.AsyncClient:
    app = create_app(runtime.settings, runtime)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=FACADE_BASE)


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


def patient_ids(dataset: SandboxDataset) -> tuple[str, str]:
    first, second = dataset.endpoint("patients")[:2]
    return str(first["id"]), str(second["id"])


async def test_no_token_is_401_with_a_challenge(
    anonymous: httpx.AsyncClient, dataset: SandboxDataset
) -> None:
    patient, _ = patient_ids(dataset)
    for path in (
        f"/fhir/Patient/{patient}",
        "/fhir/Patient?name=a",
        f"/fhir/AllergyIntolerance?patient={patient}",
        "/fhir/Spaceship/1",
    ):
        response = await anonymous.get(path)
        assert response.status_code == 401, path
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert response.json()["resourceType"] == "OperationOutcome"
    assert (await anonymous.get("/fhir/metadata")).status_code == 200


async def test_a_token_facade_did_not_issue_is_401(
    anonymous: httpx.AsyncClient, dataset: SandboxDataset
) -> None:
    patient, _ = patient_ids(dataset)
    for value in ("garbage", "a.b.c", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."):
        response = await anonymous.get(f"/fhir/Patient/{patient}", headers=bearer(value))
        assert response.status_code == 401
        assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


async def test_revoked_tokens_and_disabled_clients_stop_at_once(
    anonymous: httpx.AsyncClient, runtime: Runtime, dataset: SandboxDataset
) -> None:
    patient, _ = patient_ids(dataset)
    access = token(runtime)
    assert (
        await anonymous.get(f"/fhir/Patient/{patient}", headers=bearer(access))
    ).status_code == 200
    runtime.tokens.revoke(access, TEST_CLIENT)
    assert (
        await anonymous.get(f"/fhir/Patient/{patient}", headers=bearer(access))
    ).status_code == 401
    other = token(runtime)
    operator(runtime).set_client_status(TEST_CLIENT, "disabled")
    assert (
        await anonymous.get(f"/fhir/Patient/{patient}", headers=bearer(other))
    ).status_code == 401


async def test_a_type_not_granted_is_403(
    anonymous: httpx.AsyncClient, runtime: Runtime, dataset: SandboxDataset
) -> None:
    patient, _ = patient_ids(dataset)
    narrow = token(runtime, "patient/Patient.rs launch/patient", patient_id=patient)
    response = await anonymous.get(
        f"/fhir/AllergyIntolerance?patient={patient}", headers=bearer(narrow)
    )
    assert response.status_code == 403
    assert response.json()["issue"][0]["code"] == "forbidden"
    read_only = token(runtime, "patient/Patient.r", patient_id=patient)
    assert (
        await anonymous.get(f"/fhir/Patient/{patient}", headers=bearer(read_only))
    ).status_code == 200
    assert (
        await anonymous.get(f"/fhir/Patient?_id={patient}", headers=bearer(read_only))
    ).status_code == 403


async def test_a_patient_token_sees_its_own_patient_only(
    anonymous: httpx.AsyncClient, runtime: Runtime, dataset: SandboxDataset, sandbox: SandboxState
) -> None:
    mine, theirs = patient_ids(dataset)
    access = bearer(token(runtime, "patient/*.rs launch/patient", patient_id=mine))
    assert (await anonymous.get(f"/fhir/Patient/{mine}", headers=access)).status_code == 200
    before = len(sandbox.api_requests())
    response = await anonymous.get(f"/fhir/Patient/{theirs}", headers=access)
    assert response.status_code == 404
    assert len(sandbox.api_requests()) == before, "the vendor is not even asked"
    everyone = await all_pages(anonymous, "/fhir/Patient?_count=100", headers=access)
    assert [p["id"] for p in everyone] == [mine]
    asked_for_them = await all_pages(anonymous, f"/fhir/Patient?_id={theirs}", headers=access)
    assert asked_for_them == []


async def test_a_patient_token_cannot_reach_another_chart(
    anonymous: httpx.AsyncClient, runtime: Runtime, dataset: SandboxDataset, sandbox: SandboxState
) -> None:
    mine, theirs = patient_ids(dataset)
    access = bearer(token(runtime, "patient/*.rs launch/patient", patient_id=mine))
    system = bearer(token(runtime))
    their_allergies = await all_pages(
        anonymous, f"/fhir/AllergyIntolerance?patient={theirs}", headers=system
    )
    assert their_allergies, "the other patient needs data for this test to mean anything"
    for allergy in their_allergies:
        read = await anonymous.get(f"/fhir/AllergyIntolerance/{allergy['id']}", headers=access)
        assert read.status_code == 404
        provenance = await anonymous.get(
            f"/fhir/Provenance/AllergyIntolerance-{allergy['id']}", headers=access
        )
        assert provenance.status_code == 404
    before = len(sandbox.api_requests())
    leaked = await all_pages(
        anonymous,
        f"/fhir/AllergyIntolerance?patient={theirs}&_revinclude=Provenance:target",
        headers=access,
    )
    assert leaked == []
    calls = sandbox.api_requests()[before:]
    assert all(c.query.get("patient") != theirs for c in calls), "their records were fetched"
    own = await all_pages(anonymous, "/fhir/AllergyIntolerance", headers=access)
    assert own and all(a["patient"]["reference"] == f"Patient/{mine}" for a in own)


async def test_granular_scope_limits_results_and_vendor_calls(
    anonymous: httpx.AsyncClient, runtime: Runtime, dataset: SandboxDataset
) -> None:
    patient = next(
        str(p["id"])
        for p in dataset.endpoint("patients")
        if {a.get("status") for a in dataset.endpoint("allergies") if a["patient"] == p["id"]}
        >= {"active"}
    )
    system = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
    granular = bearer(
        token(
            runtime,
            f"patient/AllergyIntolerance.rs?clinical-status={system}|active launch/patient",
            patient_id=patient,
        )
    )
    found = await all_pages(
        anonymous, f"/fhir/AllergyIntolerance?patient={patient}", headers=granular
    )
    assert found
    assert all(a["clinicalStatus"]["coding"][0]["code"] == "active" for a in found)
    inactive = [
        a
        for a in dataset.endpoint("allergies")
        if str(a["patient"]) == patient and a.get("status") == "inactive"
    ]
    for allergy in inactive:
        read = await anonymous.get(
            f"/fhir/AllergyIntolerance/allergy-{allergy['id']}", headers=granular
        )
        assert read.status_code == 404


async def test_client_rate_limit_answers_429_with_retry_after(
    anonymous: httpx.AsyncClient, runtime: Runtime, dataset: SandboxDataset
) -> None:
    patient, _ = patient_ids(dataset)
    runtime.rate_limits.per_minute = 3
    access = bearer(token(runtime))
    statuses = [
        (await anonymous.get(f"/fhir/Patient/{patient}", headers=access)).status_code
        for _ in range(4)
    ]
    assert statuses[:3] == [200, 200, 200]
    limited = await anonymous.get(f"/fhir/Patient/{patient}", headers=access)
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) >= 1


async def test_every_interaction_is_audited_without_phi(
    anonymous: httpx.AsyncClient, runtime: Runtime, dataset: SandboxDataset
) -> None:
    mine, theirs = patient_ids(dataset)
    access = bearer(token(runtime, "patient/*.rs launch/patient", patient_id=mine))
    await anonymous.get(f"/fhir/Patient/{mine}", headers=access)
    await anonymous.get(f"/fhir/AllergyIntolerance?patient={mine}", headers=access)
    await anonymous.get(f"/fhir/Patient/{theirs}", headers=access)
    records = runtime.audit.query(client_id=TEST_CLIENT)
    interactions = [(r.interaction, r.resource_type, r.patient_id, r.outcome) for r in records]
    assert ("read", "Patient", mine, "success") in interactions
    assert ("search", "AllergyIntolerance", mine, "success") in interactions
    assert ("read", "Patient", mine, "not-found") in interactions
    search = next(r for r in records if r.interaction == "search")
    assert search.result_count == len(
        [a for a in dataset.endpoint("allergies") if str(a["patient"]) == mine]
    )
    names = {str(p["last_name"]) for p in dataset.endpoint("patients")}
    for record in records:
        assert not names & set(record.model_dump().values())


async def test_audit_events_need_a_system_scope(
    anonymous: httpx.AsyncClient, runtime: Runtime, dataset: SandboxDataset
) -> None:
    mine, _ = patient_ids(dataset)
    await anonymous.get(f"/fhir/Patient/{mine}", headers=bearer(token(runtime)))
    patient_token = bearer(token(runtime, "patient/*.rs", patient_id=mine))
    assert (await anonymous.get("/fhir/AuditEvent", headers=patient_token)).status_code == 403
    auditor = bearer(token(runtime, "system/AuditEvent.rs"))
    bundle = (await anonymous.get(f"/fhir/AuditEvent?patient={mine}", headers=auditor)).json()
    events = [e["resource"] for e in bundle["entry"]]
    assert events and all(e["resourceType"] == "AuditEvent" for e in events)
    assert any(
        entity.get("what", {}).get("reference") == f"Patient/{mine}"
        for e in events
        for entity in e.get("entity", [])
    )
