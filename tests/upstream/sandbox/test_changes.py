"""The change generator: seeded, on the sandbox clock, at its rate, visible through the API,
and announced through webhooks exactly as DrChrono would announce it (deletes: never)."""

from __future__ import annotations

from datetime import timedelta
from itertools import groupby

import pytest

from facade.sandbox.changes import Change
from facade.upstream.drchrono.sandbox.changes import ChangeGenerator
from facade.upstream.drchrono.sandbox.generator import generate
from facade.upstream.drchrono.sandbox.state import DEFAULT_CLIENT_ID, ManualClock, SandboxState
from facade.upstream.drchrono.sandbox.webhooks import EVENTS
from tests.upstream.sandbox.app_harness import START, ids, make_state, sandbox_client
from tests.upstream.sandbox.webhook_receiver import CALLBACK_URL, WebhookReceiver

SECRET = "5b7e0c2a9d14f3e8b6a1c0d97f2e4b3a8c6d1e05"
#: Endpoints whose list takes `since` (the others have no update time on the vendor's rows).
SINCE_ENDPOINTS = ("patients", "appointments", "clinical_notes", "lab_orders_summary")
#: The reference's event table, by what happened to which record.
EXPECTED_EVENT = {
    ("patients", "create"): "PATIENT_CREATE",
    ("patients", "modify"): "PATIENT_MODIFY",
    ("problems", "create"): "PATIENT_PROBLEM_CREATE",
    ("problems", "modify"): "PATIENT_PROBLEM_MODIFY",
    ("allergies", "create"): "PATIENT_ALLERGY_CREATE",
    ("allergies", "modify"): "PATIENT_ALLERGY_MODIFY",
    ("medications", "create"): "PATIENT_MEDICATION_CREATE",
    ("medications", "modify"): "PATIENT_MEDICATION_MODIFY",
    ("appointments", "create"): "APPOINTMENT_CREATE",
    ("appointments", "modify"): "APPOINTMENT_MODIFY",
}


def _steps(log: list[Change]) -> list[list[Change]]:
    return [list(changes) for _, changes in groupby(log, key=lambda c: c.step)]


async def _run(
    seed: int, hours: float = 6, rate: float = 40
) -> tuple[SandboxState, ChangeGenerator]:
    state, _ = make_state()
    generator = ChangeGenerator(state, changes_per_hour=rate, seed=seed)
    await generator.advance(hours * 3600)
    return state, generator


async def test_the_same_seed_makes_the_same_changes_and_another_seed_others() -> None:
    first, generator = await _run(seed=3)
    second, again = await _run(seed=3)
    _, other = await _run(seed=4)
    assert generator.log == again.log
    assert first.dataset.records == second.dataset.records
    assert generator.log != other.log


async def test_it_makes_the_configured_number_of_changes_an_hour_evenly_spaced() -> None:
    state, clock = make_state()
    generator = ChangeGenerator(state, changes_per_hour=12, seed=1)
    assert await generator.advance(299) == []
    first = await generator.advance(1)  # the first change falls due 5 minutes in
    assert {change.at for change in first} == {START + timedelta(minutes=5)}
    await generator.advance(3600 - 300)
    steps = _steps(generator.log)
    assert [step[0].at - START for step in steps] == [
        timedelta(minutes=5 * n) for n in range(1, 13)
    ]
    assert generator.schedule.next_at == START + timedelta(minutes=65)


async def test_every_kind_of_change_happens_over_a_day_stamped_with_its_moment() -> None:
    state, generator = await _run(seed=5, hours=24)
    done = {(c.endpoint, c.action) for c in generator.log}
    assert {("patients", "create"), ("problems", "delete"), ("medications", "delete")} <= done
    assert {("allergies", "delete"), ("appointments", "create"), ("lab_results", "modify")} <= done
    assert {c.what for c in generator.log if c.endpoint == "clinical_notes"} == {
        "locked",
        "unlocked",
    }
    latest: dict[tuple[str, str], Change] = {}
    for change in generator.log:
        latest[(change.endpoint, change.record_id)] = change
    for (endpoint, record_id), change in latest.items():
        if endpoint in SINCE_ENDPOINTS and change.action != "delete":
            record = state.dataset.by_id(endpoint, record_id)
            assert record is not None
            assert record["updated_at"] == change.at.replace(tzinfo=None).isoformat()


async def test_events_are_those_drchrono_sends_and_deletes_announce_nothing() -> None:
    _, generator = await _run(seed=6, hours=24)
    assert any(c.action == "delete" for c in generator.log)
    for step in _steps(generator.log):
        announced, *alongside = step
        if announced.endpoint == "clinical_notes":
            lock = "CLINICAL_NOTE_LOCK" if announced.what == "locked" else "CLINICAL_NOTE_UNLOCK"
            assert announced.events == (lock,)
        else:
            expected = EXPECTED_EVENT.get((announced.endpoint, announced.action))
            assert announced.events == ((expected,) if expected else ())
        assert all(set(c.events) <= set(EVENTS) for c in step)
        assert all(c.events == () for c in alongside)


@pytest.mark.parametrize("endpoint", SINCE_ENDPOINTS)
async def test_since_lists_exactly_the_records_created_or_modified_after_it(endpoint: str) -> None:
    state, clock = make_state()
    since = clock().replace(tzinfo=None).isoformat(timespec="seconds")
    generator = ChangeGenerator(state, changes_per_hour=30, seed=7)
    await generator.advance(8 * 3600)
    touched = {c.record_id for c in generator.log if c.endpoint == endpoint}
    assert touched, f"no change touched {endpoint}"
    async with sandbox_client(state) as client:
        response = await client.get(f"/api/{endpoint}", params={"since": since, "page_size": 250})
    assert response.status_code == 200
    assert {str(record_id) for record_id in ids(response.json())} == touched


async def test_deleted_records_vanish_from_lists_and_are_404_by_id() -> None:
    state, generator = await _run(seed=8, hours=24)
    deleted = [change for change in generator.log if change.action == "delete"]
    assert deleted
    async with sandbox_client(state) as client:
        for change in deleted:
            listing = await client.get(
                f"/api/{change.endpoint}", params={"patient": change.patient_id}
            )
            assert change.record_id not in {str(i) for i in ids(listing.json())}
            detail = await client.get(f"/api/{change.endpoint}/{change.record_id}")
            assert detail.status_code == 404


async def test_a_verified_webhook_receives_each_announced_change_as_the_api_serialises_it() -> None:
    receiver = WebhookReceiver(secret=SECRET)
    state, clock = make_state()
    state.webhooks.use_transport(receiver.transport())
    await state.webhooks.configure(DEFAULT_CLIENT_ID, CALLBACK_URL, SECRET, EVENTS)
    generator = ChangeGenerator(state, changes_per_hour=20, seed=9)
    await generator.advance(6 * 3600)
    # Queued at the moment of each change, not when the clock stopped.
    assert [d.event_at for d in state.webhooks.deliveries] == [
        c.at for c in generator.log if c.events
    ]
    await state.webhooks.deliver_due()
    announced = [change for change in generator.log if change.events]
    assert [h.headers["x-drchrono-event"] for h in receiver.hooks] == [
        c.events[0] for c in announced
    ]
    assert [str(h.body["object"]["id"]) for h in receiver.hooks] == [c.record_id for c in announced]
    patients = [h.body["object"] for h in receiver.hooks if "chart_id" in h.body["object"]]
    assert patients and all("primary_insurance" not in p for p in patients)  # not verbose
    assert len(receiver.hooks) < len(_steps(generator.log))  # deletes and lab results are silent


async def test_it_changes_a_generated_practice_in_its_time_zone() -> None:
    clock = ManualClock(START)
    state = SandboxState.with_default_app(generate(patients=20, seed=2), clock=clock)
    generator = ChangeGenerator(state, changes_per_hour=60, seed=2)
    await generator.advance(4 * 3600)
    assert len(_steps(generator.log)) == 240  # the practice offers something for every kind
    modified = [c for c in generator.log if c.endpoint == "patients" and c.action == "modify"]
    record = state.dataset.by_id("patients", modified[-1].record_id)
    assert record is not None
    # America/Chicago is UTC-5 in June.
    local = modified[-1].at - timedelta(hours=5)
    assert record["updated_at"] == local.replace(tzinfo=None).isoformat()
