"""The change generator: seeded, on the sandbox clock, at its rate, visible through the API,
and announced through webhooks exactly as DrChrono would announce it (deletes: never)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from facade.upstream.drchrono.sandbox.changes import EVENT_OF, Change, ChangeGenerator
from facade.upstream.drchrono.sandbox.generator import generate
from facade.upstream.drchrono.sandbox.state import DEFAULT_CLIENT_ID, SandboxState
from facade.upstream.drchrono.sandbox.webhooks import EVENTS
from tests.upstream.sandbox.app_harness import ids, make_state, sandbox_client
from tests.upstream.sandbox.webhook_receiver import CALLBACK_URL, WebhookReceiver

SECRET = "5b7e0c2a9d14f3e8b6a1c0d97f2e4b3a8c6d1e05"
#: Endpoints whose list takes `since` (the others have no update time on the vendor's rows).
SINCE_ENDPOINTS = ("patients", "appointments", "clinical_notes", "lab_orders_summary")


def _summary(changes: list[Change]) -> list[tuple[object, ...]]:
    return [(c.at, c.kind, c.record_id, c.patient_id, c.event, c.touched) for c in changes]


def _run(seed: int, hours: float = 6, rate: float = 40) -> tuple[SandboxState, ChangeGenerator]:
    state, clock = make_state()
    generator = ChangeGenerator(state, changes_per_hour=rate, seed=seed)
    generator.advance(hours * 3600)
    return state, generator


def test_the_same_seed_makes_the_same_changes_and_another_seed_others() -> None:
    first, generator = _run(seed=3)
    second, again = _run(seed=3)
    _, other = _run(seed=4)
    assert _summary(generator.log) == _summary(again.log)
    assert first.dataset.records == second.dataset.records
    assert _summary(generator.log) != _summary(other.log)


def test_it_makes_the_configured_number_of_changes_an_hour_evenly_spaced() -> None:
    state, clock = make_state()
    start = clock()
    generator = ChangeGenerator(state, changes_per_hour=12, seed=1)
    assert generator.advance(299) == []
    [first] = generator.advance(1)  # the first change falls due 5 minutes in
    assert first.at == start + timedelta(minutes=5)
    generator.advance(3600 - 300)
    assert generator.scheduled == len(generator.log) == 12
    assert [c.at - start for c in generator.log] == [timedelta(minutes=5 * n) for n in range(1, 13)]
    assert generator.next_change_at() == start + timedelta(minutes=65)
    assert all(change.at <= clock() for change in generator.log)


def test_every_kind_of_change_happens_over_a_day_and_records_are_stamped_with_its_moment() -> None:
    state, generator = _run(seed=5, hours=24)
    kinds = {change.kind for change in generator.log}
    assert {"patients.create", "patients.modify", "problems.delete", "appointments.create"} <= kinds
    assert {"clinical_notes.lock", "clinical_notes.unlock", "lab_results.modify"} & kinds
    for change in generator.log:
        if change.endpoint in ("patients", "appointments") and change.action != "delete":
            record = state.dataset.by_id(change.endpoint, change.record_id)
            assert record is not None
            stamp = change.at.replace(tzinfo=None).isoformat(timespec="seconds")
            assert record["updated_at"] >= stamp  # later changes may bump it again


def test_events_are_those_drchrono_sends_and_deletes_announce_nothing() -> None:
    _, generator = _run(seed=6, hours=24)
    for change in generator.log:
        assert change.event == EVENT_OF.get(change.kind)
        if change.action == "delete":
            assert change.event is None
        if change.event is not None:
            assert change.event in EVENTS
    assert any(c.action == "delete" for c in generator.log)


@pytest.mark.parametrize("endpoint", SINCE_ENDPOINTS)
async def test_since_lists_exactly_the_records_created_or_modified_after_it(endpoint: str) -> None:
    state, clock = make_state()
    since = clock().replace(tzinfo=None).isoformat(timespec="seconds")
    generator = ChangeGenerator(state, changes_per_hour=30, seed=7)
    generator.advance(8 * 3600)
    touched = {
        record_id
        for change in generator.log
        if change.action != "delete"
        for name, record_id in change.touched
        if name == endpoint
    }
    assert touched, f"no change touched {endpoint}"
    async with sandbox_client(state) as client:
        response = await client.get(f"/api/{endpoint}", params={"since": since, "page_size": 250})
    assert response.status_code == 200
    assert {str(record_id) for record_id in ids(response.json())} == touched


async def test_deleted_records_vanish_from_lists_and_are_404_by_id() -> None:
    state, generator = _run(seed=8, hours=24)
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
    for _ in range(6 * 60):
        generator.advance(60)
        await state.webhooks.deliver_due()
    announced = [change for change in generator.log if change.event is not None]
    assert [h.headers["x-drchrono-event"] for h in receiver.hooks] == [c.event for c in announced]
    assert [str(h.body["object"]["id"]) for h in receiver.hooks] == [c.record_id for c in announced]
    # The object is what the API's list shows (no verbose-only fields).
    for hook in receiver.hooks:
        if (
            hook.headers["x-drchrono-event"].startswith("PATIENT_")
            and "first_name" in (hook.body["object"])
        ):
            assert "primary_insurance" not in hook.body["object"]
    assert len(receiver.hooks) < len(generator.log)  # deletes and lab results are silent


def test_it_changes_a_generated_practice_too() -> None:
    clock_state, _ = make_state()
    state = SandboxState.with_default_app(generate(patients=20, seed=2), clock=clock_state.clock)
    generator = ChangeGenerator(state, changes_per_hour=60, seed=2)
    made = generator.run_until(state.clock() + timedelta(hours=4))
    assert len(made) == 240  # the generated practice offers something for every kind
    stamped = [c for c in made if c.kind == "patients.modify"]
    record = state.dataset.by_id("patients", stamped[-1].record_id)
    assert record is not None
    # Stamped in the practice's zone (America/Chicago: UTC-5 in June).
    assert record["updated_at"] == (stamped[-1].at - timedelta(hours=5)).replace(
        tzinfo=None
    ).isoformat(timespec="seconds")
