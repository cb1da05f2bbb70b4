"""Answers from the mirror through the FHIR API, for each vendor: the same resources as the
vendor's live answer, with no vendor call; live where the request or the mirror says so."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from facade.clock import FakeClock
from facade.core.compartment import CompartmentMapping
from facade.runtime import Runtime
from tests.conftest import all_pages
from tests.mirror.serving import mirror_on
from tests.vendors import VENDORS, change_generator, patient_ids, vendor_calls

pytestmark = VENDORS

LIVE = {"Cache-Control": "no-cache"}


@pytest.fixture
def clock() -> FakeClock:
    """As tests/mirror/test_sync.py's: after every change time the generated data holds."""
    return FakeClock(datetime(2026, 7, 1, 12, tzinfo=UTC))


def _searches(runtime: Runtime, patients: list[str]) -> list[str]:
    urls = []
    for mapping in runtime.service.registry:
        if isinstance(mapping, CompartmentMapping):
            urls += [f"/fhir/{mapping.resource_type}?patient={p}" for p in patients]
        else:
            urls.append(f"/fhir/{mapping.resource_type}")
    return urls


def _by_id(resources: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {f"{r['resourceType']}/{r['id']}": r for r in resources}


async def test_every_search_answers_from_the_mirror_as_the_vendor_does_without_a_call(
    runtime: Runtime, fhir: httpx.AsyncClient, sandbox: Any
) -> None:
    await mirror_on(runtime)
    patients = patient_ids(sandbox)[:3]
    asked = 0
    for url in _searches(runtime, patients):
        before = len(vendor_calls(sandbox))
        first = await fhir.get(url)
        mirrored = _by_id(await all_pages(fhir, url))
        assert len(vendor_calls(sandbox)) == before, (url, vendor_calls(sandbox)[before:])
        assert first.headers["X-Upstream-Calls"] == "0"
        assert "Age" in first.headers, url
        live = _by_id(await all_pages(fhir, url, headers=LIVE))
        asked += len(vendor_calls(sandbox)) - before
        assert mirrored == live, url
    assert asked > 0  # the live answers did ask the vendor


async def test_reads_answer_from_the_mirror_as_the_vendor_does_without_a_call(
    runtime: Runtime, fhir: httpx.AsyncClient, sandbox: Any
) -> None:
    await mirror_on(runtime)
    found: dict[str, dict[str, Any]] = {}
    for url in _searches(runtime, patient_ids(sandbox)[:2]):
        found.update(_by_id(await all_pages(fhir, url)))
    assert found
    before = len(vendor_calls(sandbox))
    for key, resource in found.items():
        read = await fhir.get(f"/fhir/{key}")
        assert read.status_code == 200, (key, read.text)
        assert read.json() == resource, key
    assert len(vendor_calls(sandbox)) == before, vendor_calls(sandbox)[before:]


async def test_no_cache_asks_the_vendor_and_max_age_only_takes_what_is_fresh_enough(
    runtime: Runtime, fhir: httpx.AsyncClient, sandbox: Any, clock: Any
) -> None:
    await mirror_on(runtime)
    url = f"/fhir/Patient?_id={patient_ids(sandbox)[0]}"
    assert (await fhir.get(url)).headers["X-Upstream-Calls"] == "0"
    live = await fhir.get(url, headers={"Cache-Control": "no-cache"})
    assert int(live.headers["X-Upstream-Calls"]) > 0
    assert "Age" not in live.headers
    # Asked again at once with no-cache: the vendor again, not the answer just kept.
    again = await fhir.get(url, headers={"Pragma": "no-cache"})
    assert int(again.headers["X-Upstream-Calls"]) > 0

    clock.advance(600)
    fresh_enough = await fhir.get(url, headers={"Cache-Control": "max-age=900"})
    assert fresh_enough.headers["X-Upstream-Calls"] == "0"
    assert fresh_enough.headers["Age"] == "600"
    too_old = await fhir.get(url, headers={"Cache-Control": "max-age=300"})
    assert int(too_old.headers["X-Upstream-Calls"]) > 0
    assert "Age" not in too_old.headers
    assert too_old.json()["entry"] == fresh_enough.json()["entry"]
    # An invalid directive is ignored (RFC 9111 §5.2): the mirror answers.
    ignored = await fhir.get(url, headers={"Cache-Control": "max-age=soon"})
    assert ignored.headers["X-Upstream-Calls"] == "0"


async def test_a_mirror_answer_says_how_fresh_it_is_and_revalidates(
    runtime: Runtime, fhir: httpx.AsyncClient, sandbox: Any, clock: Any
) -> None:
    await mirror_on(runtime)
    patient = patient_ids(sandbox)[0]
    clock.advance(42)
    url = f"/fhir/Encounter?patient={patient}"
    first = await fhir.get(url)
    assert first.headers["Age"] == "42"
    assert first.headers["ETag"].startswith('W/"')
    assert "Last-Modified" in first.headers
    second = await fhir.get(url)
    assert second.headers["ETag"] == first.headers["ETag"]
    unchanged = await fhir.get(url, headers={"If-None-Match": first.headers["ETag"]})
    assert unchanged.status_code == 304
    assert unchanged.headers["X-Upstream-Calls"] == "0"
    other = await fhir.get(f"/fhir/Encounter?patient={patient_ids(sandbox)[1]}")
    assert other.headers["ETag"] != first.headers["ETag"]
    read = await fhir.get(f"/fhir/Patient/{patient}")
    assert read.headers["Age"] == "42" and read.headers["X-Upstream-Calls"] == "0"


async def test_what_the_mirror_has_not_synced_is_answered_live(
    runtime: Runtime, fhir: httpx.AsyncClient, sandbox: Any
) -> None:
    await mirror_on(runtime, backfill=False)
    answer = await fhir.get(f"/fhir/Condition?patient={patient_ids(sandbox)[0]}")
    assert answer.status_code == 200
    assert int(answer.headers["X-Upstream-Calls"]) > 0
    assert "Age" not in answer.headers


async def test_after_an_hour_of_changes_and_a_sync_the_mirror_answers_as_the_vendor_does(
    runtime: Runtime, fhir: httpx.AsyncClient, sandbox: Any, clock: FakeClock
) -> None:
    mirrored = await mirror_on(runtime)
    changes = change_generator(sandbox, 30, seed=11)
    for _ in range(30):
        clock.advance(120)
        await changes.run_until(clock.now())
    assert {c.action for c in changes.log} >= {"create", "modify"}
    assert (await mirrored.sync.poll()).finished
    assert (await mirrored.sync.reconcile()).finished
    touched = sorted({c.patient_id for c in changes.log if c.patient_id})[:4]
    assert set(touched) <= set(patient_ids(sandbox))
    served = 0
    for url in _searches(runtime, touched):
        before = len(vendor_calls(sandbox))
        from_mirror = _by_id(await all_pages(fhir, url))
        assert len(vendor_calls(sandbox)) == before, url
        assert from_mirror == _by_id(await all_pages(fhir, url, headers=LIVE)), url
        served += len(from_mirror)
    assert served > 0


async def test_the_capability_statement_says_what_the_mirror_changes_only_when_it_is_on(
    runtime: Runtime, fhir: httpx.AsyncClient
) -> None:
    def notes(statement: dict[str, Any]) -> tuple[str, list[str], str]:
        rest = statement["rest"][0]
        last_updated = [
            p["documentation"]
            for r in rest["resource"]
            for p in r.get("searchParam", [])
            if p["name"] == "_lastUpdated"
        ]
        export = rest["operation"][0]["documentation"]
        return statement["description"], last_updated, export

    description, last_updated, export = notes((await fhir.get("/fhir/metadata")).json())
    assert "It stores no clinical data." in description and "mirror" not in description
    assert last_updated and not any("mirror" in note for note in last_updated)
    assert "mirror" not in export

    await mirror_on(runtime)
    description, last_updated, export = notes((await fhir.get("/fhir/metadata")).json())
    assert "stores no clinical data" not in description
    assert "encrypted copy" in description and "Cache-Control" in description
    assert all(note.startswith("exact from the mirror") for note in last_updated)
    assert export.startswith("From the mirror") and "`_since` is exact" in export
