"""A short vendor throttle stays short: after DrChrono's 429 ("Expected available in N
seconds", Retry-After: N) facade waits N seconds and asks again, and its own 503 says the
wait that is really left, not the time to the top of the hour.

The issue's reproduction: at 12:27 a 429 with Retry-After: 7 became 33 minutes of 503s.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from facade.clock import FakeClock
from facade.errors import UpstreamThrottled
from facade.store.connections import VendorCredentials
from facade.upstream.budget import UpstreamBudget
from facade.upstream.cache import ResponseCache
from facade.upstream.drchrono.client import ClientPolicy, DrChronoClient
from facade.upstream.drchrono.sandbox.app import create_sandbox_app
from facade.upstream.drchrono.sandbox.state import DEFAULT_CLIENT_ID, SandboxState
from tests.rest.test_errors import assert_outcome

#: The issue's moment: 33 minutes before the vendor's hour turns.
TWELVE_TWENTY_SEVEN = datetime(2026, 6, 1, 12, 27, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(TWELVE_TWENTY_SEVEN)


def vendor_statuses(sandbox: SandboxState, since: int) -> list[int]:
    return [entry.status for entry in sandbox.api_requests()[since:]]


def diagnostics(body: dict) -> str:
    return str(body["issue"][0]["details"]["text"])


async def test_a_seven_second_vendor_throttle_is_seven_seconds_of_503_not_33_minutes(
    warm_fhir: httpx.AsyncClient, sandbox: SandboxState, clock: FakeClock
) -> None:
    seen = len(sandbox.api_requests())
    sandbox.throttle.hold(DEFAULT_CLIENT_ID, clock.now(), 7)

    first = await warm_fhir.get("/fhir/Patient?_count=1")
    body = assert_outcome(first, 503, "upstream-throttled")
    assert int(first.headers["Retry-After"]) == 7  # the vendor's wait (max wait is 5 s)
    assert "The EHR asked facade to wait" in diagnostics(body)
    assert vendor_statuses(sandbox, seen) == [429]

    clock.advance(1)
    second = await warm_fhir.get("/fhir/Patient?_count=1")
    assert_outcome(second, 503, "upstream-throttled")
    assert int(second.headers["Retry-After"]) == 6  # what is left of it, not the hour
    assert vendor_statuses(sandbox, seen) == [429], "no call before the vendor's time"

    clock.advance(6)
    third = await warm_fhir.get("/fhir/Patient?_count=1")
    assert third.status_code == 200, third.text
    assert vendor_statuses(sandbox, seen) == [429, 200], "asked the vendor again, and it answered"
    assert clock.now() - TWELVE_TWENTY_SEVEN < timedelta(seconds=8)


async def test_a_vendor_throttle_within_the_max_wait_is_waited_out_then_asked_again(
    warm_fhir: httpx.AsyncClient, sandbox: SandboxState, clock: FakeClock
) -> None:
    seen = len(sandbox.api_requests())
    sandbox.throttle.hold(DEFAULT_CLIENT_ID, clock.now(), 3)

    response = await warm_fhir.get("/fhir/Patient?_count=1")
    assert response.status_code == 200, response.text
    assert clock.slept == [3.0]
    # The next request goes straight out: the throttle said nothing about the hour.
    assert (await warm_fhir.get("/fhir/Patient?_count=2")).status_code == 200
    assert clock.slept == [3.0]
    assert vendor_statuses(sandbox, seen) == [429, 200, 200]


async def test_the_sandbox_throttles_like_drf_for_the_time_it_was_told() -> None:
    """The sandbox's side of the test above, faithful to DrChrono's DRF answer."""
    clock = FakeClock(TWELVE_TWENTY_SEVEN)
    from facade.upstream.drchrono.sandbox.generator import generate

    sandbox = SandboxState.with_default_app(generate(patients=2, seed=1), clock=clock.now)
    token = sandbox.issue_tokens().access_token
    transport = httpx.ASGITransport(app=create_sandbox_app(sandbox))
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://vendor") as vendor:
        sandbox.throttle.hold(DEFAULT_CLIENT_ID, clock.now(), 7)
        refused = await vendor.get("/api/patients", headers=headers)
        clock.advance(7)
        served = await vendor.get("/api/patients", headers=headers)
    assert refused.status_code == 429
    assert refused.json() == {"detail": "Request was throttled. Expected available in 7.0 seconds."}
    assert refused.headers["Retry-After"] == "7"
    assert served.status_code == 200
    assert sandbox.throttle.used_this_hour(DEFAULT_CLIENT_ID, clock.now()) == 1  # 429s are free


# -- a vendor that says how long only in Retry-After -------------------------------------------


class TerseVendor:
    """A stateful fake vendor whose first answer is a 429 with a Retry-After header (an HTTP
    date, or nothing at all) and no "Expected available" text; it records when it was asked."""

    def __init__(self, clock: FakeClock, retry_after: str | None) -> None:
        self.clock = clock
        self.retry_after = retry_after
        self.asked_at: list[datetime] = []

    def app(self) -> Starlette:
        async def patients(_request: Request) -> JSONResponse:
            self.asked_at.append(self.clock.now())
            if len(self.asked_at) == 1:
                headers = {"Retry-After": self.retry_after} if self.retry_after else {}
                return JSONResponse({"detail": "Request was throttled."}, 429, headers)
            return JSONResponse({"results": [], "next": None})

        return Starlette(routes=[Route("/api/patients", patients)])


class Keeper:
    def __init__(self, credentials: VendorCredentials) -> None:
        self.credentials = credentials

    def load(self) -> VendorCredentials:
        return self.credentials

    def save(self, credentials: VendorCredentials) -> None:
        self.credentials = credentials


@pytest.fixture
async def terse() -> AsyncIterator[tuple[TerseVendor, DrChronoClient, FakeClock]]:
    clock = FakeClock(TWELVE_TWENTY_SEVEN)
    vendor = TerseVendor(clock, None)
    credentials = VendorCredentials(
        base_url="http://vendor.test",
        client_id="c",
        client_secret="s",
        access_token="a",
        refresh_token="r",
        expires_at=clock.now() + timedelta(days=2),
        scope="",
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=vendor.app())) as http:
        client = DrChronoClient(
            http,
            Keeper(credentials),
            UpstreamBudget(clock, 500, None),
            ResponseCache(clock),
            clock,
            ClientPolicy(max_wait_seconds=5.0),
        )
        yield vendor, client, clock


async def test_a_retry_after_http_date_is_waited_until_then(
    terse: tuple[TerseVendor, DrChronoClient, FakeClock],
) -> None:
    vendor, client, clock = terse
    vendor.retry_after = format_datetime(clock.now() + timedelta(seconds=4), usegmt=True)
    await client.fetch_page("http://vendor.test/api/patients", reason="test")
    assert clock.slept == [4.0]
    assert [t - TWELVE_TWENTY_SEVEN for t in vendor.asked_at] == [
        timedelta(0),
        timedelta(seconds=4),
    ]


async def test_a_429_that_names_no_wait_is_a_minute_not_the_hour(
    terse: tuple[TerseVendor, DrChronoClient, FakeClock],
) -> None:
    vendor, client, clock = terse
    with pytest.raises(UpstreamThrottled) as raised:
        await client.fetch_page("http://vendor.test/api/patients", reason="test")
    assert raised.value.retry_after == 60
    clock.advance(60)
    await client.fetch_page("http://vendor.test/api/patients", reason="test")
    assert len(vendor.asked_at) == 2
