"""The change generator: the same seed makes the same changes, an hour holds exactly the rate,
the API serves every change (with its new updated_at) and no deleted record, and webhooks go
out for appointment changes and signings only, never for what CareCloud does not announce.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable
from dataclasses import asdict
from datetime import date, datetime, timedelta
from typing import Any

import httpx
import pytest

from facade.sandbox.changes import Change
from facade.upstream.carecloud.sandbox.changes import ChangeGenerator
from facade.upstream.carecloud.sandbox.context import PRACTICE_ZONE, iso
from facade.upstream.carecloud.sandbox.dataset import CareCloudDataset
from facade.upstream.carecloud.sandbox.state import ManualClock, SandboxState
from tests.upstream.carecloud.conftest import SEED, START
from tests.upstream.carecloud.test_sandbox_webhooks import Receiver, subscribe

DETAIL = {"patients": "patient", "appointments": "appointment", "encounters": "encounter"}


def fresh_state(generated: CareCloudDataset) -> SandboxState:
    return SandboxState.create(copy.deepcopy(generated), seed=SEED, clock=ManualClock(START))


async def changed(state: SandboxState, per_hour: float, hours: float, seed: int) -> list[Change]:
    generator = ChangeGenerator(state, per_hour, seed=seed)
    await generator.advance(hours * 3600)
    return generator.log


def relog(api: httpx.AsyncClient, state: SandboxState) -> None:
    """Sessions last 15 minutes; after a simulated hour the client needs a new one."""
    api.headers["Authorization"] = f"Bearer {state.issue_session()['session_token']}"


def last_changes(log: Iterable[Change]) -> dict[tuple[str, str], Change]:
    """The latest change of each record, by (endpoint, id)."""
    return {(c.endpoint, c.record_id): c for c in log}


async def all_patient_ids(api: httpx.AsyncClient) -> list[str]:
    ids: list[str] = []
    for page in range(1, 100):
        found = (await api.get("/patients", params={"page": page})).json()["patients"]
        if not found:
            return ids
        ids += [p["id"] for p in found]
    raise AssertionError("more pages than expected")


def local_day(appointment: dict[str, Any]) -> date:
    return datetime.fromisoformat(appointment["start_time"]).astimezone(PRACTICE_ZONE).date()


def listed_appointment_ids(body: dict[str, Any]) -> set[str]:
    return {a["id"] for a in body["appointments"]}


async def test_the_same_seed_makes_the_same_changes_and_another_seed_others(
    generated: CareCloudDataset,
) -> None:
    first, second, other = (fresh_state(generated) for _ in range(3))

    log = await changed(first, 240, 1, seed=5)
    again = await changed(second, 240, 1, seed=5)
    elsewhere = await changed(other, 240, 1, seed=6)

    assert [asdict(c) for c in log] == [asdict(c) for c in again]
    assert json.dumps(first.dataset.as_json()) == json.dumps(second.dataset.as_json())
    assert [c.record_id for c in log] != [c.record_id for c in elsewhere]


async def test_a_simulated_hour_makes_exactly_the_rate_of_changes(
    state: SandboxState, clock: ManualClock
) -> None:
    generator = ChangeGenerator(state, 90, seed=1)

    await generator.advance(3600)

    assert clock() == START + timedelta(hours=1)
    assert len({c.step for c in generator.log}) == generator.schedule.steps == 90
    assert all(START < c.at <= START + timedelta(hours=1) for c in generator.log)
    await generator.advance(1200)
    assert len({c.step for c in generator.log}) == 120


async def test_changed_records_are_served_with_their_new_updated_at(
    api: httpx.AsyncClient, state: SandboxState
) -> None:
    log = await changed(state, 240, 1, seed=2)
    relog(api, state)

    latest = last_changes(log)
    kept = {key: c for key, c in latest.items() if not (c.action == "delete" and not c.items)}
    assert {endpoint for endpoint, _ in kept} == {"patients", "appointments", "encounters"}
    for (endpoint, record_id), change in kept.items():
        response = await api.get(f"/{endpoint}/{record_id}")
        assert response.status_code == 200, change
        assert response.json()[DETAIL[endpoint]]["updated_at"] == iso(change.at), change


async def test_nested_rows_appear_change_and_vanish_inside_their_record(
    api: httpx.AsyncClient, state: SandboxState
) -> None:
    log = await changed(state, 240, 1, seed=3)
    relog(api, state)

    rows: dict[tuple[str, str, str], Change] = {}
    for change in log:
        for item in change.items:
            rows[(change.endpoint, change.record_id, item)] = change
    assert {c.action for c in rows.values()} == {"create", "modify", "delete"}
    assert {item.partition("/")[0] for _, _, item in rows} >= {
        "insurances",
        "problems",
        "medications",
        "allergies",
        "vitals",
        "immunizations",
        "lab_results",
    }
    holders = last_changes(log)
    for (endpoint, record_id, item), change in rows.items():
        response = await api.get(f"/{endpoint}/{record_id}")
        holder = holders[(endpoint, record_id)]
        if holder.action == "delete" and not holder.items:  # the rows went with it
            assert response.status_code == 404
            continue
        record = response.json()[DETAIL[endpoint]]
        kind, _, row_id = item.partition("/")
        present = [row for row in record[kind] if str(row["id"]) == row_id]
        assert len(present) == (0 if change.action == "delete" else 1), change
        if change.what == "problem resolved":
            assert present[0]["status"] == "resolved"
        if change.what == "lab result corrected":
            assert present[0]["status"] == "corrected"


async def test_the_listings_show_the_new_updated_at_too(
    api: httpx.AsyncClient, state: SandboxState
) -> None:
    log = await changed(state, 240, 1, seed=4)
    relog(api, state)
    latest = last_changes(log)

    charts = [c for (endpoint, _), c in latest.items() if endpoint == "encounters"]
    for change in charts[:15]:
        if change.action == "delete" and not change.items:
            continue
        listed = (await api.get("/encounters", params={"patient_id": change.patient_id})).json()
        [encounter] = [e for e in listed["encounters"] if e["id"] == change.record_id]
        assert encounter["updated_at"] == iso(change.at)
    booked = [c for (endpoint, _), c in latest.items() if endpoint == "appointments"]
    for change in booked[:15]:
        if change.action == "delete":
            continue
        read = (await api.get(f"/appointments/{change.record_id}")).json()["appointment"]
        day = local_day(read)
        listed = (
            await api.get(
                "/appointments",
                params={"patient_id": change.patient_id or "", "start_date": day.isoformat()},
            )
        ).json()
        [appointment] = [a for a in listed["appointments"] if a["id"] == change.record_id]
        assert appointment["updated_at"] == iso(change.at)


async def test_deleted_records_vanish_from_lists_and_read_as_404(
    api: httpx.AsyncClient, state: SandboxState
) -> None:
    generator = ChangeGenerator(state, 300, seed=7)
    booked_on: dict[str, date] = {}
    for _ in range(4 * 300):  # one change at a time, noting where each booking sat last
        booked_on.update({a["id"]: local_day(a) for a in state.dataset.appointments})
        await generator.advance(12)
    log = generator.log
    relog(api, state)

    deleted = [c for c in last_changes(log).values() if c.action == "delete" and not c.items]
    assert {c.endpoint for c in deleted} == {"patients", "appointments", "encounters"}
    patients = set(await all_patient_ids(api))
    for change in deleted:
        read = await api.get(f"/{change.endpoint}/{change.record_id}")
        assert read.status_code == 404, change
        assert read.json() == {"error": f"{DETAIL[change.endpoint].title()} not found"}
        if change.endpoint == "patients":
            assert change.record_id not in patients
        elif change.endpoint == "encounters":
            listed = await api.get("/encounters", params={"patient_id": change.patient_id})
            assert change.record_id not in {e["id"] for e in listed.json()["encounters"]}
        else:
            day = booked_on[change.record_id]
            window = {"start_date": (day - timedelta(days=46)).isoformat()}
            window["end_date"] = (day + timedelta(days=46)).isoformat()
            listed = await api.get(
                "/appointments", params={"patient_id": change.patient_id or "", **window}
            )
            assert change.record_id not in listed_appointment_ids(listed.json())


def announced(change: Change) -> str | None:
    """What CareCloud sends a webhook for (research §2.5): appointment changes, signings."""
    if change.endpoint == "appointments" and change.action in ("create", "modify"):
        return "appointment.changed"
    if change.endpoint == "encounters" and change.action == "modify" and not change.items:
        return "encounter.signed" if change.what in ("signed", "amended") else None
    return None


async def test_webhooks_go_out_for_appointment_changes_and_signings_only(
    api: httpx.AsyncClient, state: SandboxState
) -> None:
    receiver = Receiver()
    await subscribe(api, state, receiver)

    log = await changed(state, 240, 2, seed=8)

    assert receiver.rejected == 0
    assert all(d.status == 200 for d in state.deliveries)
    for change in log:
        assert change.events == ((announced(change),) if announced(change) else ()), change
    expected = [(event, c.record_id, c.patient_id) for c in log for event in c.events]
    received = [
        (
            e["event"],
            e["data"].get("appointment_id") or e["data"].get("encounter_id"),
            e["data"]["patient_id"],
        )
        for e in receiver.accepted
    ]
    assert received == expected
    assert {e for e, _, _ in received} == {"appointment.changed", "encounter.signed"}
    silent = {(c.endpoint, c.action, bool(c.items)) for c in log if not c.events}
    assert silent >= {
        ("patients", "create", False),
        ("patients", "modify", False),
        ("patients", "create", True),
        ("patients", "delete", True),
        ("appointments", "delete", False),
        ("encounters", "create", False),
        ("encounters", "create", True),
        ("encounters", "modify", True),
        ("encounters", "delete", True),
    }


async def test_a_delete_then_a_create_keeps_lookups_right(state: SandboxState) -> None:
    dataset = state.dataset
    gone = dataset.appointments[0]
    assert dataset.appointment(gone["id"]) is gone

    dataset.remove("appointments", gone["id"])
    dataset.appointments.append(dict(gone, id="another"))

    assert dataset.appointment(gone["id"]) is None
    assert dataset.appointment("another") is not None
    assert dataset.remove("appointments", gone["id"]) is None


@pytest.mark.parametrize("per_hour", [0, 0.5])
async def test_a_slow_or_stopped_generator_changes_nothing_in_a_minute(
    state: SandboxState, per_hour: float
) -> None:
    before = json.dumps(state.dataset.as_json())

    assert await changed(state, per_hour, 1 / 60, seed=1) == []
    assert json.dumps(state.dataset.as_json()) == before
