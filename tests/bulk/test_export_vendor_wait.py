"""A parked export waits as long as it must, and no longer: the vendor's stated wait after a
429, the top of the hour only when facade's own hourly budget is spent."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import httpx
import pytest

from facade.bulk.exports import BulkExports
from facade.clock import FakeClock
from facade.runtime import Runtime
from tests.bulk.conftest import download, export
from tests.vendors import VENDORS, hold, patient_ids, vendor_calls

pytestmark = VENDORS

#: 33 minutes before the hour turns, as in the issue's reproduction.
TWELVE_TWENTY_SEVEN = datetime(2026, 6, 1, 12, 27, 0, tzinfo=UTC)


class WatchedClock(FakeClock):
    """A fake clock that lets the test look at the server each time somebody sleeps on it."""

    def __init__(self, start: datetime) -> None:
        super().__init__(start)
        self.before_sleep: Callable[[], Awaitable[None]] | None = None

    async def sleep(self, seconds: float) -> None:
        if self.before_sleep is not None:
            await self.before_sleep()
        await super().sleep(seconds)


@pytest.fixture
def clock() -> WatchedClock:
    return WatchedClock(TWELVE_TWENTY_SEVEN)


def watch_progress(fhir: httpx.AsyncClient, exports: BulkExports, clock: WatchedClock) -> list[str]:
    """The X-Progress of every paused export's status poll, taken while the export is parked."""
    seen: list[str] = []

    async def poll() -> None:
        for job in exports.store.active_jobs():
            if job.state == "paused":
                status = await fhir.get(f"/fhir/$export-status/{job.id}")
                assert status.status_code == 202
                seen.append(status.headers["x-progress"])

    clock.before_sleep = poll
    return seen


async def test_a_vendor_throttle_parks_the_export_for_the_vendors_wait_only(
    fhir, runtime: Runtime, exports: BulkExports, clock: WatchedClock, caplog
) -> None:
    assert runtime.sandbox is not None
    await runtime.service.context()
    seen = len(vendor_calls(runtime.sandbox))
    hold(runtime.sandbox, 30)
    progress = watch_progress(fhir, exports, clock)

    with caplog.at_level(logging.INFO, logger="facade.bulk"):
        manifest = await export(fhir, exports, "$export", params={"_type": "Patient"})

    assert 30.0 in clock.slept, "parked for the 30 s the vendor asked for"
    assert max(clock.slept) < 60, f"parked longer than the vendor asked: {max(clock.slept)} s"
    statuses = [e.status for e in vendor_calls(runtime.sandbox)[seen:]]
    assert statuses[0] == 429 and set(statuses[1:]) == {200}
    assert any("paused for 30 s (vendor)" in r.getMessage() for r in caplog.records)
    assert progress and progress[0].startswith("paused (the EHR asked to wait)"), progress
    patients = (await download(fhir, manifest))["Patient"]
    assert len(patients) == len(patient_ids(runtime.sandbox))


async def test_facades_own_hourly_budget_parks_the_export_until_the_hour_turns(
    fhir, runtime: Runtime, exports: BulkExports, clock: WatchedClock, caplog, vendor_name: str
) -> None:
    assert runtime.sandbox is not None
    await runtime.service.context()
    budget = runtime.client.budget
    budget.hourly_limit = budget.hourly_limit - budget.remaining  # nothing left this hour
    seen = len(vendor_calls(runtime.sandbox))
    progress = watch_progress(fhir, exports, clock)

    with caplog.at_level(logging.INFO, logger="facade.bulk"):
        manifest = await export(fhir, exports, "$export", params={"_type": "Patient"})

    assert progress and progress[0].startswith("paused (hourly vendor budget spent)"), progress
    # DrChrono's quota hour turns at 13:00; CareCloud's rolling hour frees a call an hour
    # after the first of the hour's calls (the practice context's, made at 12:27).
    frees_a_call = {"drchrono": 33 * 60, "carecloud": 3600}[vendor_name]
    assert clock.slept[0] == frees_a_call, "until facade's own count frees a call"
    assert all(e.status == 200 for e in vendor_calls(runtime.sandbox)[seen:])  # never a 429
    assert any("(hourly-budget)" in r.getMessage() for r in caplog.records)
    assert manifest["output"]
