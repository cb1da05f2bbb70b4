"""`FACADE_MIRROR=on` end to end, for each vendor: answers are live until the scheduler has
backfilled, then searches, reads and Bulk exports come from the mirror with no vendor call."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from facade.clock import FakeClock
from facade.runtime import Runtime
from facade.settings import Settings
from tests.bulk.conftest import download, export
from tests.mirror.vendor_state import after_todays_visits
from tests.vendors import VENDORS, patient_ids, vendor_calls

pytestmark = VENDORS


@pytest.fixture
def clock() -> FakeClock:
    return after_todays_visits()


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.with_overrides(mirror=True)


async def test_with_the_mirror_on_answers_come_from_it_once_the_scheduler_has_backfilled(
    runtime: Runtime, fhir: httpx.AsyncClient, sandbox: Any, clock: FakeClock
) -> None:
    assert runtime.mirror is not None and runtime.service.mirror is not None
    url = f"/fhir/Condition?patient={patient_ids(sandbox)[0]}"
    before = await fhir.get(url)
    assert int(before.headers["X-Upstream-Calls"]) > 0 and "Age" not in before.headers

    scheduler = runtime.mirror.scheduler
    for _ in range(500):
        if scheduler.backfilled:
            break
        clock.advance((await scheduler.step()).wait)
    assert scheduler.backfilled

    sandbox.fail_next(100_000, "500")  # from here on, any vendor call would fail
    calls = len(vendor_calls(sandbox))
    after = await fhir.get(url)
    assert after.status_code == 200 and after.headers["X-Upstream-Calls"] == "0"
    assert after.json()["entry"] == before.json()["entry"]
    assert "Age" in after.headers and "ETag" in after.headers

    assert runtime.exports is not None
    await runtime.exports.worker.start()
    try:
        manifest = await export(fhir, runtime.exports, "$export")
    finally:
        await runtime.exports.worker.stop()
    assert not manifest.get("error"), manifest
    assert sum(len(lines) for lines in (await download(fhir, manifest)).values()) > 0
    assert len(vendor_calls(sandbox)) == calls
