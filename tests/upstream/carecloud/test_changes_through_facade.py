"""facade over a CareCloud sandbox whose practice has been changing for an hour: every changed
patient's chart still maps to valid FHIR, a changed record's meta.lastUpdated is its new
updated_at, and a deleted patient or chart row is gone (the transport sandwich, no network).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import httpx
import pytest

from facade.clock import FakeClock
from facade.sandbox.changes import Change
from facade.upstream.carecloud.sandbox.changes import ChangeGenerator
from facade.upstream.carecloud.sandbox.state import SandboxState
from tests.conftest import all_pages
from tests.fhir_models import assert_fhir_resources
from tests.vendors import generated, sandbox_state

pytestmark = pytest.mark.parametrize("vendor_name", ["carecloud"], indirect=True)

COMPARTMENT = (
    "AllergyIntolerance",
    "Condition",
    "Coverage",
    "DiagnosticReport",
    "DocumentReference",
    "Encounter",
    "Immunization",
    "MedicationRequest",
    "Observation",
    "Procedure",
)


@pytest.fixture
def clock() -> FakeClock:
    """facade's test clock, which the sandbox reads too (this folder's own is the sandbox's)."""
    return FakeClock()


@pytest.fixture
def sandbox(clock: FakeClock) -> SandboxState:
    """The suites' CareCloud sandbox, with room in its hourly budget for reading it whole."""
    state: SandboxState = sandbox_state(
        "carecloud", generated("carecloud"), clock, hourly_limit=10**5
    )
    return state


async def an_hour_of_changes(sandbox: SandboxState, clock: FakeClock) -> list[Change]:
    """An hour at 300 changes an hour on facade's test clock (the sandbox cannot move it, so
    the test does, a change's worth at a time)."""
    changes = ChangeGenerator(sandbox, 300, seed=4)
    for _ in range(300):
        clock.advance(12)
        await changes.run_until(clock.now())
    assert changes.schedule.steps == 300
    return changes.log


def patients_touched(log: Iterable[Change]) -> dict[str, Change]:
    return {c.patient_id: c for c in log if c.patient_id}


async def test_every_changed_chart_still_maps_to_valid_fhir(
    fhir: httpx.AsyncClient, sandbox: SandboxState, clock: FakeClock
) -> None:
    log = await an_hour_of_changes(sandbox, clock)
    living = {p["id"] for p in sandbox.dataset.patients}

    checked = 0
    for patient_id in sorted(set(patients_touched(log)) & living):
        for resource_type in COMPARTMENT:
            found = await all_pages(fhir, f"/fhir/{resource_type}?patient={patient_id}")
            checked += assert_fhir_resources(found)
    assert checked > 100


async def test_changed_records_carry_their_new_time_and_deleted_ones_are_gone(
    fhir: httpx.AsyncClient, sandbox: SandboxState, clock: FakeClock
) -> None:
    log = await an_hour_of_changes(sandbox, clock)
    last: dict[str, Change] = {}
    for change in log:
        if change.endpoint == "patients":
            last[change.record_id] = change

    assert {c.action for c in last.values()} == {"create", "modify", "delete"}
    for patient_id, change in last.items():
        response = await fhir.get(f"/fhir/Patient/{patient_id}")
        if change.action == "delete" and not change.items:
            assert response.status_code == 404
            continue
        assert response.status_code == 200
        updated = datetime.fromisoformat(response.json()["meta"]["lastUpdated"])
        assert updated == change.at.replace(microsecond=0), change


async def test_a_removed_chart_row_is_not_served(
    fhir: httpx.AsyncClient, sandbox: SandboxState, clock: FakeClock
) -> None:
    log = await an_hour_of_changes(sandbox, clock)
    removed = [
        (c, item)
        for c in log
        if c.action == "delete" and c.items
        for item in c.items
        if item.startswith("problems/")
    ]
    assert removed
    for change, item in removed:
        conditions = await all_pages(fhir, f"/fhir/Condition?patient={change.patient_id}")
        row = item.partition("/")[2]
        assert not [c for c in conditions if c["id"].endswith(f"-{row}")], change
