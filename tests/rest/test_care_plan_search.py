"""CarePlan and Goal: a patient's care plans by plan_type, exactly the sandbox's records,
both served from one unfiltered /api/care_plans page."""

from __future__ import annotations

import httpx

from facade.upstream.drchrono.sandbox.dataset import SandboxDataset
from facade.upstream.drchrono.sandbox.state import SandboxState
from tests.conftest import all_pages

CATEGORY = "http://hl7.org/fhir/us/core/CodeSystem/careplan-category"


def plans_of(dataset: SandboxDataset, patient_id: object, types: set[int]) -> list[dict]:
    return [
        p
        for p in dataset.endpoint("care_plans")
        if str(p["patient"]) == str(patient_id) and p["plan_type"] in types
    ]


async def test_careplan_and_goal_share_one_vendor_call(
    warm_fhir: httpx.AsyncClient, dataset: SandboxDataset, sandbox: SandboxState
) -> None:
    for patient in dataset.endpoint("patients")[:6]:
        before = len(sandbox.api_requests())
        for category in ("assess-plan", f"{CATEGORY}|assess-plan"):
            plans = await all_pages(
                warm_fhir, f"/fhir/CarePlan?patient=Patient/{patient['id']}&category={category}"
            )
            expected = sorted(
                f"careplan-{p['id']}" for p in plans_of(dataset, patient["id"], {2, 3, 4})
            )
            assert sorted(r["id"] for r in plans) == expected
            assert all('xmlns="http://www.w3.org/1999/xhtml"' in r["text"]["div"] for r in plans)
        goals = await all_pages(warm_fhir, f"/fhir/Goal?patient={patient['id']}")
        expected = sorted(f"goal-{p['id']}" for p in plans_of(dataset, patient["id"], {1}))
        assert sorted(r["id"] for r in goals) == expected
        calls = sandbox.api_requests()[before:]
        assert [(c.endpoint, c.query) for c in calls] == [
            ("care_plans", {"patient": str(patient["id"])})
        ]


async def test_careplan_status_date_and_goal_filters(
    warm_fhir: httpx.AsyncClient, dataset: SandboxDataset
) -> None:
    patient = dataset.endpoint("patients")[0]
    plans = plans_of(dataset, patient["id"], {2, 3, 4})
    base = f"/fhir/CarePlan?patient={patient['id']}&category=assess-plan"
    assert len(await all_pages(warm_fhir, f"{base}&status=active")) == len(plans)
    assert await all_pages(warm_fhir, f"{base}&status=completed") == []
    assert await all_pages(warm_fhir, f"/fhir/CarePlan?patient={patient['id']}&category=x") == []
    day = sorted(p["created_at"][:10] for p in plans)[len(plans) // 2]
    found = await all_pages(warm_fhir, f"{base}&date=ge{day}")
    # period is [created, scheduled_date]: it overlaps "ge day" when it ends on or after it.
    assert sorted(r["id"] for r in found) == sorted(
        f"careplan-{p['id']}" for p in plans if p["scheduled_date"] >= day
    )
    goal = plans_of(dataset, patient["id"], {1})[0]
    goal_base = f"/fhir/Goal?patient={patient['id']}"
    for query in (
        "lifecycle-status=active",
        f"target-date={goal['scheduled_date']}",
        f"target-date=le{goal['scheduled_date']}",
    ):
        found = await all_pages(warm_fhir, f"{goal_base}&{query}")
        assert f"goal-{goal['id']}" in [r["id"] for r in found], query
    assert await all_pages(warm_fhir, f"{goal_base}&lifecycle-status=cancelled") == []


async def test_read_and_id(warm_fhir: httpx.AsyncClient, dataset: SandboxDataset) -> None:
    plan = next(p for p in dataset.endpoint("care_plans") if p["plan_type"] == 2)
    read = await warm_fhir.get(f"/fhir/CarePlan/careplan-{plan['id']}")
    assert read.status_code == 200
    assert read.json()["subject"]["reference"] == f"Patient/{plan['patient']}"
    assert [
        r["id"] for r in await all_pages(warm_fhir, f"/fhir/CarePlan?_id=careplan-{plan['id']}")
    ] == [f"careplan-{plan['id']}"]
    goal = next(p for p in dataset.endpoint("care_plans") if p["plan_type"] == 1)
    read = await warm_fhir.get(f"/fhir/Goal/goal-{goal['id']}")
    assert read.status_code == 200 and read.json()["target"][0]["dueDate"] == goal["scheduled_date"]
    # A goal is not a CarePlan, a referral (5) or health concern (6) is neither.
    assert (await warm_fhir.get(f"/fhir/CarePlan/careplan-{goal['id']}")).status_code == 404
    referral = next(p for p in dataset.endpoint("care_plans") if p["plan_type"] == 5)
    assert (await warm_fhir.get(f"/fhir/Goal/goal-{referral['id']}")).status_code == 404
    assert (await warm_fhir.get("/fhir/Goal?lifecycle-status=active")).status_code == 400
