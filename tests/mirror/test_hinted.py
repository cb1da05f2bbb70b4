"""The sync refreshing what the vendor's webhooks announced, through the transport sandwich:
each sandbox's real webhook sender delivers into facade's receiver, and `refresh_hinted`
re-reads from the vendor exactly the records the hints name (the event's body is never
taken), deletes what the vendor no longer has, leaves unannounced changes to poll and
reconcile, and stops within its share with the hints it did not reach kept for later."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from facade.clock import FakeClock
from facade.mirror import MirrorStore
from facade.mirror.sync import MirrorSync, SyncShare, plan_sync
from facade.runtime import Runtime
from facade.upstream.drchrono.sandbox.changes import ChangeGenerator
from facade.upstream.drchrono.sandbox.state import DEFAULT_CLIENT_ID
from facade.upstream.drchrono.sandbox.webhooks import EVENTS
from tests.mirror.test_webhooks import (  # noqa: F401  (fixtures)
    CARECLOUD_HOOKS,
    DRCHRONO_HOOKS,
    SECRET,
    app_transport,
    settings,
)
from tests.mirror.vendor_state import vendor_now
from tests.vendors import vendor_calls


def _store(runtime: Runtime) -> MirrorStore:
    """The store the receiver keeps hints in: the mirror's."""
    assert runtime.webhooks is not None
    return runtime.webhooks.store


async def _sync(runtime: Runtime, share: SyncShare | None = None) -> MirrorSync:
    ctx = await runtime.service.context()
    client = runtime.client
    store = _store(runtime)
    return MirrorSync(
        store,
        client,
        ctx,
        plan_sync(runtime.service.registry, ctx, client.wire),
        connection=runtime.settings.vendor,
        clock=store.clock,
        share=share or SyncShare(client.budget, store.clock),
    )


def _hinted(runtime: Runtime) -> set[tuple[str, str, str | None]]:
    """The records hinted so far (looked at, and kept for the sync)."""
    store = _store(runtime)
    connection = runtime.settings.vendor
    taken = store.take_hints(connection, limit=10_000)
    store.add_hints(connection, [(h.endpoint, h.vendor_id, h.patient_id, h.event) for h in taken])
    return {(h.endpoint, h.vendor_id, h.patient_id) for h in taken}


# -- DrChrono --------------------------------------------------------------------------------


@pytest.fixture
async def drchrono(sandbox: Any, app_transport: Any) -> Any:  # noqa: F811  (a fixture)
    sandbox.webhooks.use_transport(app_transport)
    webhook = await sandbox.webhooks.configure(
        DEFAULT_CLIENT_ID, DRCHRONO_HOOKS, SECRET, frozenset(EVENTS)
    )
    assert webhook.verified
    return sandbox


async def test_drchrono_hinted_records_are_read_again_once_each_and_nothing_else(
    drchrono: Any,
    runtime: Runtime,
    clock: FakeClock,
) -> None:
    sync = await _sync(runtime)
    store = sync.store
    assert (await sync.backfill()).finished
    backfilled = {
        (x.endpoint, i) for x in sync.listings for i in store.ids(sync.connection, x.endpoint)
    }
    changes = ChangeGenerator(drchrono, changes_per_hour=60, seed=4)
    for _ in range(60):
        clock.advance(60)
        await changes.run_until(clock.now())
        await drchrono.webhooks.deliver_due()
    hinted = _hinted(runtime)
    assert hinted
    before = len(vendor_calls(drchrono))

    run = await sync.refresh_hinted(batch=7)

    assert run.finished
    assert run.calls == len(vendor_calls(drchrono)) - before == len(hinted)
    assert store.pending_hints(sync.connection) == 0
    records = {(e, i) for e, i, _ in hinted}
    at_vendor = set()
    for listing in sync.listings:
        for record in await vendor_now(runtime, listing):
            if (listing.endpoint, str(record["id"])) in records:
                held = store.get(sync.connection, listing.endpoint, str(record["id"]))
                assert held is not None and held.body == record, listing.endpoint
                at_vendor.add((listing.endpoint, str(record["id"])))
    assert at_vendor
    for endpoint, record_id in records - at_vendor:  # announced, then deleted at the vendor
        assert store.get(sync.connection, endpoint, record_id) is None
    # DrChrono announces no chart-row delete: the row stays until a reconcile.
    unannounced = [
        c
        for c in changes.log
        if c.action == "delete" and (c.endpoint, c.record_id) in backfilled - records
    ]
    assert unannounced
    for change in unannounced:
        assert store.get(sync.connection, change.endpoint, change.record_id) is not None
    assert (await sync.reconcile()).deleted >= len(unannounced)


async def test_drchrono_a_hint_is_read_at_the_vendor_not_taken_from_the_event(
    drchrono: Any, runtime: Runtime
) -> None:
    sync = await _sync(runtime)
    store = sync.store
    assert (await sync.backfill()).finished
    kept, gone = drchrono.dataset.endpoint("patients")[:2]
    # A live read keeps the record a while; the hint's read must not be served from it.
    listing = next(x for x in sync.listings if x.endpoint == "patients")
    params = runtime.client.wire.for_record(listing.params)
    await runtime.client.get_record(
        "patients", str(kept["id"]), params, reason="test", cache_ttl=600
    )
    kept["first_name"] = "Renamed"
    forged = {**copy.deepcopy(kept), "first_name": "Announced-but-not-so"}
    drchrono.webhooks.announce("PATIENT_MODIFY", forged)
    drchrono.webhooks.announce("PATIENT_MODIFY", gone)
    drchrono.dataset.endpoint("patients").remove(gone)  # deleted at the vendor since
    await drchrono.webhooks.deliver_due()
    before = len(vendor_calls(drchrono))

    run = await sync.refresh_hinted()

    assert run.finished and run.calls == 2 == len(vendor_calls(drchrono)) - before
    assert run.deleted == 1
    assert store.get(sync.connection, "patients", str(gone["id"])) is None
    held = store.get(sync.connection, "patients", str(kept["id"]))
    assert held is not None
    assert held.body["first_name"] == "Renamed" != forged["first_name"]


async def test_drchrono_a_spent_share_keeps_the_hints_it_did_not_reach(
    drchrono: Any,
    runtime: Runtime,
    clock: FakeClock,
) -> None:
    assert (await (await _sync(runtime)).backfill()).finished
    patients = drchrono.dataset.endpoint("patients")[:5]
    for patient in patients:
        drchrono.webhooks.announce("PATIENT_MODIFY", patient)
    await drchrono.webhooks.deliver_due()
    limit = runtime.client.budget.hourly_limit
    sync = await _sync(runtime, SyncShare(runtime.client.budget, clock, 2 / limit))
    before = len(vendor_calls(drchrono))

    cut = await sync.refresh_hinted(batch=4)

    assert cut.paused and "share" in cut.paused
    assert cut.calls == 2 == len(vendor_calls(drchrono)) - before
    assert sync.store.pending_hints(sync.connection) == 3
    clock.advance(3600)
    rest = await sync.refresh_hinted()
    assert rest.paused and rest.calls == 2
    clock.advance(3600)
    last = await sync.refresh_hinted()
    assert last.finished and last.calls == 1
    assert sync.store.pending_hints(sync.connection) == 0


# -- CareCloud -------------------------------------------------------------------------------


@pytest.mark.parametrize("vendor_name", ["carecloud"], indirect=True)
async def test_carecloud_events_re_read_just_those_patients_encounters(
    sandbox: Any,
    app_transport: Any,  # noqa: F811  (a fixture)
    runtime: Runtime,
) -> None:
    """CareCloud lists encounters patient by patient and announces signed encounters and
    changed appointments (which the mirror does not keep, but a check-in opens a visit):
    either re-lists the patient's encounters, once per patient however many hints name it."""
    sandbox.webhook_transport = app_transport
    sandbox.subscribe(CARECLOUD_HOOKS, SECRET, ["appointment.changed", "encounter.signed"])
    sync = await _sync(runtime)
    store = sync.store
    assert (await sync.backfill()).finished
    encounter = next(e for e in sandbox.dataset.encounters if e["status"] == "open")
    signed = encounter["patient_id"]
    same = next(a for a in sandbox.dataset.appointments if a["patient_id"] == signed)
    other = next(a for a in sandbox.dataset.appointments if a["patient_id"] != signed)
    await sandbox.sign_encounter(encounter["id"])
    await sandbox.change_appointment_status(same["id"], "checked_in")
    await sandbox.change_appointment_status(other["id"], "checked_in")
    # Gone at the vendor since the backfill, unannounced: the patient's re-listing drops it.
    dropped = next(e for e in sandbox.dataset.encounters if e["patient_id"] == other["patient_id"])
    sandbox.dataset.encounters.remove(dropped)
    assert _hinted(runtime) == {
        ("encounters", encounter["id"], signed),
        ("appointments", same["id"], signed),
        ("appointments", other["id"], other["patient_id"]),
    }
    before = len(vendor_calls(sandbox))

    run = await sync.refresh_hinted()

    assert run.finished and run.deleted == 1
    assert store.get(sync.connection, "encounters", dropped["id"]) is None
    calls = vendor_calls(sandbox)[before:]
    assert run.calls == len(calls) == 2
    assert sorted(c.path for c in calls) == ["/encounters"] * 2
    assert {patient for c in calls for patient in c.query.values()} >= {
        signed,
        other["patient_id"],
    }
    listing = next(x for x in sync.listings if x.endpoint == "encounters")
    for patient in (signed, other["patient_id"]):
        held = {
            r.vendor_id: r.body for r in store.for_patient(sync.connection, "encounters", patient)
        }
        params = {**listing.params, listing.patient_param: patient}
        vendor = await runtime.client.list_all("encounters", params, reason="test")
        assert held == {str(r["id"]): r for r in vendor}
    held_encounter = store.get(sync.connection, "encounters", encounter["id"])
    assert held_encounter is not None and held_encounter.body["status"] == "signed"
    assert store.pending_hints(sync.connection) == 0
