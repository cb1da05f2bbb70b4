"""When the vendor's hourly budget is spent, facade says so (503 + Retry-After) instead of
hammering the vendor, and serves again once the hour turns."""

from __future__ import annotations

import httpx
import pytest

from facade.clock import FakeClock
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
    # The fake clock stands at 12:00:00; the vendor's hour resets at 13:00:00.
    assert 3500 <= retry_after <= 3600
    throttled = [e for e in sandbox.api_requests() if e.status == 429]
    assert len(throttled) == 1, "facade must not keep calling a vendor that said to wait"

    clock.advance(retry_after)
    assert (await warm_fhir.get("/fhir/Patient?_count=1")).status_code == 200
