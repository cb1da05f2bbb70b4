"""When a call budget is spent, facade says so (503 + Retry-After) instead of hammering the
vendor, and serves again when a call is free. Its Retry-After is the wait that is really
left: what the vendor's 429 named (here the vendor's own hour is spent), or, when facade's
own hourly count (FACADE_UPSTREAM_HOURLY_LIMIT) is spent, the time until the hour turns.
A short vendor throttle stays short: tests/upstream/test_vendor_retry_after.py."""

from __future__ import annotations

import httpx
import pytest

from facade.clock import FakeClock
from facade.runtime import Runtime
from facade.upstream.drchrono.sandbox.state import SandboxLimits, SandboxState
from tests.rest.test_errors import assert_outcome

HOURLY_LIMIT = 8


@pytest.fixture
def sandbox_limits() -> SandboxLimits:
    return SandboxLimits(hourly_limit=HOURLY_LIMIT, burst_per_second=None)


async def test_spent_hour_is_503_with_the_time_to_the_top_of_the_hour(
    warm_fhir: httpx.AsyncClient, sandbox: SandboxState, clock: FakeClock
) -> None:
    statuses = []
    for index in range(HOURLY_LIMIT):
        response = await warm_fhir.get(f"/fhir/Patient?_count=1&_id={index + 1}")
        statuses.append(response.status_code)
    assert statuses[-1] == 503
    response = await warm_fhir.get("/fhir/Patient?_count=1")
    body = assert_outcome(response, 503, "upstream-throttled")
    assert body["issue"][0]["code"] == "throttled"
    retry_after = int(response.headers["Retry-After"])
    # The fake clock stands at 12:00:00; the vendor's 429 named its reset at 13:00:00.
    assert 3500 <= retry_after <= 3600
    assert "The EHR asked facade to wait" in body["issue"][0]["details"]["text"]
    throttled = [e for e in sandbox.api_requests() if e.status == 429]
    assert len(throttled) == 1, "facade must not keep calling a vendor that said to wait"

    clock.advance(retry_after)
    assert (await warm_fhir.get("/fhir/Patient?_count=1")).status_code == 200


async def test_facades_own_hourly_count_spent_is_503_until_the_hour_without_asking_the_vendor(
    warm_fhir: httpx.AsyncClient, runtime: Runtime, sandbox: SandboxState, clock: FakeClock
) -> None:
    clock.advance(27 * 60)  # 12:27:00
    budget = runtime.client.budget
    budget.hourly_limit = budget.hourly_limit - budget.remaining + 1  # one call left
    assert (await warm_fhir.get("/fhir/Patient?_count=1")).status_code == 200
    seen = len(sandbox.api_requests())

    response = await warm_fhir.get("/fhir/Patient?_count=2")
    body = assert_outcome(response, 503, "upstream-throttled")
    assert int(response.headers["Retry-After"]) == 33 * 60
    assert "facade's hourly budget of EHR calls is spent" in body["issue"][0]["details"]["text"]
    assert len(sandbox.api_requests()) == seen, (
        "the vendor is not asked while facade's count is spent"
    )

    clock.advance(33 * 60)
    assert (await warm_fhir.get("/fhir/Patient?_count=2")).status_code == 200
