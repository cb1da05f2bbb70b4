"""Bulk $export from the mirror, for each vendor: the same NDJSON as a live export, with no
vendor call after the backfill (every call would fail), and `_since` exact on the vendor's
change times."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
import pytest

from facade.bulk.exports import BulkExports
from facade.clock import FakeClock
from facade.runtime import Runtime
from tests.bulk.conftest import download, export, finished, job_id_of, kick_off
from tests.bulk.test_lifecycle import Crash
from tests.mirror.serving import Mirrored, mirror_on
from tests.mirror.vendor_state import after_todays_visits
from tests.vendors import VENDORS, change_generator, vendor_calls

pytestmark = VENDORS


@pytest.fixture
def clock() -> FakeClock:
    return after_todays_visits()


async def _exported(fhir: httpx.AsyncClient, exports: BulkExports, path: str) -> dict[str, Any]:
    await exports.worker.start()
    try:
        manifest = await export(fhir, exports, path)
    finally:
        await exports.worker.stop()
    assert not manifest.get("error"), manifest
    return {
        f"{resource['resourceType']}/{resource['id']}": resource
        for lines in (await download(fhir, manifest)).values()
        for resource in lines
    }


async def _mirrored(runtime: Runtime) -> tuple[Mirrored, BulkExports]:
    mirrored = await mirror_on(runtime)
    assert runtime.exports is not None
    return mirrored, runtime.exports


async def test_a_system_export_from_the_mirror_is_the_live_export_without_a_vendor_call(
    runtime: Runtime, fhir: httpx.AsyncClient, sandbox: Any
) -> None:
    assert runtime.exports is not None
    live = await _exported(fhir, runtime.exports, "$export")
    _, exports = await _mirrored(runtime)
    sandbox.fail_next(100_000, "500")  # any vendor call from here on fails the export
    before = len(vendor_calls(sandbox))

    mirrored = await _exported(fhir, exports, "$export")

    assert len(vendor_calls(sandbox)) == before
    assert mirrored.keys() == live.keys()
    assert mirrored == live


async def test_since_from_the_mirror_is_exact_on_the_vendors_change_times(
    runtime: Runtime, fhir: httpx.AsyncClient, sandbox: Any, clock: FakeClock
) -> None:
    mirrored, exports = await _mirrored(runtime)
    clock.advance(3600)
    since = clock.now()
    changes = change_generator(sandbox, 20, seed=5)
    for _ in range(20):
        clock.advance(60)
        await changes.run_until(clock.now())
    assert (await mirrored.sync.poll()).finished
    assert (await mirrored.sync.reconcile()).finished
    clock.advance(60)
    everything = await _exported(fhir, exports, "$export")
    stamp = since.isoformat().replace("+00:00", "Z")
    changed = await _exported(fhir, exports, f"$export?_since={stamp}")

    assert changed, "the hour's changes are exported"
    for key, resource in everything.items():
        last_updated = resource.get("meta", {}).get("lastUpdated")
        if resource["resourceType"] == "Provenance" or last_updated is None:
            continue
        moment = datetime.fromisoformat(last_updated)
        # Exactly the resources the vendor changed since, by the vendor's own times.
        assert (key in changed) == (moment >= since), (key, last_updated)


async def test_a_crash_mid_export_from_the_mirror_resumes_to_the_same_files(
    runtime: Runtime, fhir: httpx.AsyncClient, sandbox: Any
) -> None:
    """Pages from the mirror cost no call, so they are checkpointed at most once a second:
    a crash between checkpoints redoes those pages, with nothing duplicated or lost."""
    _, exports = await _mirrored(runtime)
    reference = await _exported(fhir, exports, "$export")
    sandbox.fail_next(100_000, "500")  # any vendor call from here on fails the export
    written = []

    def crash(point: str, part: int, pages: int) -> None:
        if point == "page-written":
            written.append((part, pages))
            if len(written) == 5:
                raise Crash()  # after the 5th page's lines were written

    exports.runner.hook = crash
    await exports.worker.start()
    job = job_id_of(await kick_off(fhir, "$export"))
    await exports.worker.wait(job)
    assert exports.store.job(job).state == "running"  # died mid-export
    await exports.worker.stop()
    exports.runner.hook = None
    await exports.worker.start()  # a new process: resumes from the database
    try:
        manifest = await finished(fhir, exports, job)
    finally:
        await exports.worker.stop()
    assert not manifest.get("error"), manifest
    files = await download(fhir, manifest)
    resumed = [resource for lines in files.values() for resource in lines]
    keys = [f"{r['resourceType']}/{r['id']}" for r in resumed]
    assert len(keys) == len(set(keys)), "nothing written twice"
    assert dict(zip(keys, resumed, strict=True)) == reference
