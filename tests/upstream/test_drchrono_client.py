"""The DrChrono client against the sandbox: paging, redirects, retries, the call budget,
tokens and the response cache.

The client reaches the sandbox app through httpx.ASGITransport and waits on a FakeClock, so
every wait is counted instead of slept. What reached the vendor is read from the sandbox's
request log.
"""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from facade.clock import FakeClock
from facade.errors import (
    UpstreamAuthFailed,
    UpstreamThrottled,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from facade.store.connections import VendorCredentials
from facade.upstream.budget import UpstreamBudget, metered
from facade.upstream.cache import ResponseCache
from facade.upstream.drchrono.client import REFRESH_MARGIN, ClientPolicy, DrChronoClient
from facade.upstream.drchrono.connection import authorize_auto_approved
from facade.upstream.drchrono.oauth import refresh_tokens, revoke_token
from facade.upstream.drchrono.sandbox.app import create_sandbox_app
from facade.upstream.drchrono.sandbox.dataset import SandboxDataset
from facade.upstream.drchrono.sandbox.generator import generate
from facade.upstream.drchrono.sandbox.state import SandboxLimits, SandboxState

BASE_URL = "http://drchrono.sandbox"
REDIRECT_URI = "http://127.0.0.1:8765/drchrono/callback"
NO_BURST = SandboxLimits(burst_per_second=None)
#: Short real timeouts: the sandbox's "timeout" fault really sleeps, the client gives up.
FAST = ClientPolicy(timeout_seconds=0.05, retries=3, max_wait_seconds=5.0)


class RecordingKeeper:
    """Credentials in memory that remember every save (the client's refreshed tokens)."""

    def __init__(self, credentials: VendorCredentials):
        self.current = credentials
        self.saved: list[VendorCredentials] = []

    def load(self) -> VendorCredentials:
        return self.current

    def save(self, credentials: VendorCredentials) -> None:
        self.current = credentials
        self.saved.append(credentials)


@dataclass
class Connected:
    sandbox: SandboxState
    clock: FakeClock
    http: httpx.AsyncClient
    keeper: RecordingKeeper
    client: DrChronoClient
    first: VendorCredentials = field(init=False)

    def __post_init__(self) -> None:
        self.first = self.keeper.current

    def patients_url(self, **params: str) -> str:
        return self.client.list_url("patients", params)

    async def call(self) -> None:
        """One vendor call that always succeeds when nothing is wrong."""
        await self.client.fetch_page(self.patients_url(page_size="1"), reason="test")

    def api_statuses(self) -> list[int]:
        return [entry.status for entry in self.sandbox.api_requests()]


Connect = Callable[..., Awaitable[Connected]]


@pytest.fixture(scope="module")
def five_patients() -> SandboxDataset:
    return generate(patients=5, seed=1)


@pytest.fixture
async def connect(five_patients: SandboxDataset) -> AsyncIterator[Connect]:
    """Connect a DrChronoClient to a fresh sandbox through the OAuth flow; all knobs optional."""
    opened: list[httpx.AsyncClient] = []

    async def make(
        *,
        limits: SandboxLimits = NO_BURST,
        policy: ClientPolicy = FAST,
        hourly_limit: int = 500,
        burst_per_second: int | None = None,
        start: datetime | None = None,
    ) -> Connected:
        clock = FakeClock(start)
        sandbox = SandboxState.with_default_app(
            copy.deepcopy(five_patients), seed=1, limits=limits, clock=clock.now
        )
        http = httpx.AsyncClient(transport=httpx.ASGITransport(app=create_sandbox_app(sandbox)))
        opened.append(http)
        app = sandbox.default_app
        credentials = await authorize_auto_approved(
            http, BASE_URL, app.client_id, app.client_secret, REDIRECT_URI, clock.now()
        )
        keeper = RecordingKeeper(credentials)
        client = DrChronoClient(
            http,
            keeper,
            UpstreamBudget(clock, hourly_limit, burst_per_second),
            ResponseCache(clock),
            clock,
            policy,
        )
        return Connected(sandbox, clock, http, keeper, client)

    yield make
    for http in opened:
        await http.aclose()


# -- paging and redirects ------------------------------------------------------------------


async def test_list_all_follows_next_across_pages(connect: Connect) -> None:
    c = await connect()
    everyone = {"show_inactive": "true"}
    in_one_page = await c.client.list_all(
        "patients", {**everyone, "page_size": "250"}, reason="test"
    )
    paged = await c.client.list_all("patients", {**everyone, "page_size": "2"}, reason="test")

    assert len(in_one_page) == 5
    assert [p["id"] for p in paged] == [p["id"] for p in in_one_page]
    pages = c.sandbox.api_requests("patients")[1:]
    assert len(pages) == 3
    assert "cursor" not in pages[0].query
    assert all("cursor" in page.query for page in pages[1:])


async def test_users_current_redirect_is_resent_with_the_bearer(connect: Connect) -> None:
    c = await connect()
    user = await c.client.get_path("/api/users/current", reason="test")

    assert user["id"] == c.sandbox.dataset.current_user_id
    requests = c.sandbox.api_requests()
    assert [(r.path, r.status) for r in requests] == [
        ("/api/users/current", 302),
        (f"/api/users/{c.sandbox.dataset.current_user_id}", 200),
    ]
    # The sandbox answers 200 only to an authenticated request: the bearer went along.
    assert requests[1].client_id == c.sandbox.default_app.client_id


class OffSiteVendor:
    """A vendor that points facade at another host, by a list's `next` and by a 302.

    It records the host, path and Authorization header of every request it is sent; the
    transport routes every host here, so a followed link would show up as a request.
    """

    ELSEWHERE = "http://collector.example"

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str]] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        self.seen.append((headers.get("host", ""), scope["path"], headers.get("authorization", "")))
        status, extra, body = 200, [(b"content-type", b"application/json")], b"{}"
        if scope["path"] == "/api/patients":
            body = json.dumps(
                {
                    "previous": None,
                    "next": f"{self.ELSEWHERE}/api/patients?cursor=abc",
                    "results": [{"id": 1}],
                }
            ).encode()
        elif scope["path"] == "/api/users/current":
            status, body = 302, b""
            extra = [(b"location", f"{self.ELSEWHERE}/api/users/1".encode())]
        await send({"type": "http.response.start", "status": status, "headers": extra})
        await send({"type": "http.response.body", "body": body})


@pytest.fixture
async def off_site() -> AsyncIterator[tuple[OffSiteVendor, DrChronoClient]]:
    vendor = OffSiteVendor()
    clock = FakeClock()
    credentials = VendorCredentials(
        base_url="http://drchrono.fake",
        client_id="client",
        client_secret="secret",
        access_token="the-bearer-token",
        refresh_token="refresh",
        expires_at=clock.now() + timedelta(days=2),
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=vendor)) as http:
        yield (
            vendor,
            DrChronoClient(
                http,
                RecordingKeeper(credentials),
                UpstreamBudget(clock, 500, None),
                ResponseCache(clock),
                clock,
                FAST,
            ),
        )


async def test_a_next_link_to_another_host_is_refused(
    off_site: tuple[OffSiteVendor, DrChronoClient],
) -> None:
    vendor, client = off_site
    with pytest.raises(UpstreamUnavailable):
        await client.list_all("patients", {}, reason="test")
    assert [(host, path) for host, path, _ in vendor.seen] == [("drchrono.fake", "/api/patients")]


async def test_a_redirect_to_another_host_is_refused(
    off_site: tuple[OffSiteVendor, DrChronoClient],
) -> None:
    vendor, client = off_site
    with pytest.raises(UpstreamUnavailable):
        await client.get_path("/api/users/current", reason="test")
    assert vendor.seen == [("drchrono.fake", "/api/users/current", "Bearer the-bearer-token")]


# -- failures and retries ------------------------------------------------------------------


def assert_backoff(slept: list[float], policy: ClientPolicy) -> None:
    """The k-th retry waits between half and all of min(cap, base * 2**(k-1))."""
    for k, seconds in enumerate(slept, start=1):
        ceiling = min(policy.backoff_cap_seconds, policy.backoff_base_seconds * 2 ** (k - 1))
        assert ceiling / 2 <= seconds <= ceiling


async def test_server_errors_are_retried_with_backoff(connect: Connect) -> None:
    c = await connect()
    c.sandbox.fail_next(FAST.retries, "500")
    await c.call()

    assert c.api_statuses() == [500] * FAST.retries + [200]
    assert len(c.clock.slept) == FAST.retries
    assert_backoff(c.clock.slept, FAST)


async def test_server_errors_beyond_the_retries_raise_upstream_unavailable(
    connect: Connect,
) -> None:
    c = await connect()
    c.sandbox.fail_next(FAST.retries + 2, "500")
    with pytest.raises(UpstreamUnavailable):
        await c.call()
    assert c.api_statuses() == [500] * (FAST.retries + 1)


async def test_a_timeout_is_retried(connect: Connect) -> None:
    c = await connect()
    c.sandbox.fail_next(1, "timeout", timeout_seconds=30)
    await c.call()
    assert [e.fault for e in c.sandbox.api_requests()] == ["timeout", None]
    assert c.api_statuses()[-1] == 200


async def test_timeouts_beyond_the_retries_raise_upstream_timeout(connect: Connect) -> None:
    c = await connect()
    c.sandbox.fail_next(FAST.retries + 2, "timeout", timeout_seconds=30)
    with pytest.raises(UpstreamTimeout):
        await c.call()
    assert [e.fault for e in c.sandbox.api_requests()] == ["timeout"] * (FAST.retries + 1)
    assert_backoff(c.clock.slept, FAST)


# -- the vendor's rate limit ---------------------------------------------------------------


async def test_an_injected_429_makes_the_client_wait_what_the_vendor_said(
    connect: Connect,
) -> None:
    c = await connect()
    c.sandbox.fail_next(1, "429")
    await c.call()
    # "Request was throttled. Expected available in 1.0 seconds."
    assert c.clock.slept == [1.0]
    assert c.api_statuses() == [429, 200]


async def test_a_429_at_the_end_of_the_vendors_hour_waits_exactly_until_then(
    connect: Connect,
) -> None:
    c = await connect(
        limits=SandboxLimits(hourly_limit=2, burst_per_second=None),
        start=datetime(2026, 6, 1, 12, 59, 57, tzinfo=UTC),
    )
    await c.call()
    await c.call()
    await c.call()  # the vendor's hour is spent: "Expected available in 3.0 seconds"

    assert c.clock.slept == [3.0]
    assert c.api_statuses() == [200, 200, 429, 200]


async def test_a_429_longer_than_max_wait_raises_throttled_with_its_retry_after(
    connect: Connect,
) -> None:
    c = await connect(limits=SandboxLimits(hourly_limit=2, burst_per_second=None))
    await c.call()
    await c.call()
    with pytest.raises(UpstreamThrottled) as raised:
        await c.call()
    # The vendor's own hour is spent: its 429 says "Expected available in 3600.0 seconds"
    # (the fake clock stands at 12:00:00), and that is the wait facade passes on.
    assert raised.value.retry_after == 3600
    assert raised.value.headers["Retry-After"] == "3600"
    assert c.clock.slept == []

    # Told to wait, the client does not ask again before then.
    with pytest.raises(UpstreamThrottled):
        await c.call()
    assert c.api_statuses() == [200, 200, 429]


async def test_a_short_vendor_throttle_leaves_facades_own_hourly_count_alone(
    connect: Connect,
) -> None:
    c = await connect()
    await c.call()
    c.sandbox.throttle.hold(c.sandbox.default_app.client_id, c.clock.now(), 7)
    with pytest.raises(UpstreamThrottled) as raised:
        await c.call()
    assert raised.value.retry_after == 7
    assert "asked facade to wait" in raised.value.message
    assert c.client.budget.remaining == 500 - 2  # two calls spent, not the hour

    c.clock.advance(7)
    await c.call()
    assert c.api_statuses() == [200, 429, 200]


async def test_the_budget_never_sends_a_call_past_the_hourly_limit(connect: Connect) -> None:
    c = await connect(hourly_limit=4)
    for _ in range(4):
        await c.call()
    with pytest.raises(UpstreamThrottled) as raised:
        await c.call()
    assert raised.value.retry_after == 3600
    assert "facade's hourly budget" in raised.value.message
    assert len(c.sandbox.api_requests()) == 4

    c.clock.advance(3590)  # 12:59:50: ten seconds to go is more than max_wait
    with pytest.raises(UpstreamThrottled) as raised:
        await c.call()
    assert raised.value.retry_after == 10
    assert len(c.sandbox.api_requests()) == 4

    c.clock.advance(8)  # 12:59:58: two seconds to go, so the client waits for the new hour
    await c.call()
    assert c.clock.slept == [2.0]
    assert c.api_statuses() == [200] * 5


async def test_the_burst_limit_paces_calls_below_the_vendors(connect: Connect) -> None:
    c = await connect(limits=SandboxLimits(burst_per_second=10), burst_per_second=10)
    started = c.clock.now()
    for _ in range(25):
        await c.call()

    assert 429 not in c.api_statuses()
    assert len(c.sandbox.api_requests()) == 25
    assert c.clock.now() - started >= timedelta(seconds=2)


# -- tokens --------------------------------------------------------------------------------


async def test_the_token_is_refreshed_before_it_expires(connect: Connect) -> None:
    c = await connect()
    refresh_due = c.first.expires_at - REFRESH_MARGIN

    c.clock.advance((refresh_due - c.clock.now()).total_seconds() - 1)
    await c.call()
    assert c.keeper.saved == []

    c.clock.advance(2)
    await c.call()
    [rotated] = c.keeper.saved
    assert rotated.access_token != c.first.access_token
    assert rotated.refresh_token != c.first.refresh_token
    assert rotated.expires_at > c.first.expires_at
    assert (rotated.base_url, rotated.client_id) == (c.first.base_url, c.first.client_id)
    # The refresh happened before the call, which carried the new token.
    assert c.api_statuses() == [200, 200]

    # Refresh tokens rotate: the old one no longer works at the vendor.
    with pytest.raises(UpstreamAuthFailed):
        await refresh_tokens(
            c.http, BASE_URL, c.first.client_id, c.first.client_secret, c.first.refresh_token
        )


async def test_a_401_triggers_one_refresh_and_a_retry(connect: Connect) -> None:
    c = await connect()
    c.sandbox.fail_next(1, "expire_token")
    await c.call()

    assert c.api_statuses() == [401, 200]
    assert len(c.keeper.saved) == 1
    assert c.keeper.saved[0].access_token != c.first.access_token


async def test_a_401_after_refreshing_raises_auth_failed(connect: Connect) -> None:
    c = await connect()
    c.sandbox.fail_next(2, "expire_token")
    with pytest.raises(UpstreamAuthFailed):
        await c.call()
    assert c.api_statuses() == [401, 401]
    assert len(c.keeper.saved) == 1


async def test_a_revoked_refresh_token_raises_auth_failed(connect: Connect) -> None:
    c = await connect()
    await revoke_token(
        c.http, BASE_URL, c.first.client_id, c.first.client_secret, c.first.refresh_token
    )
    with pytest.raises(UpstreamAuthFailed):
        await c.call()
    assert c.api_statuses() == [401]
    assert c.keeper.saved == []


async def test_a_process_sharing_the_store_uses_the_tokens_another_refreshed(
    connect: Connect,
) -> None:
    """Two processes on one stored connection (a replica and a worker): when one refreshes,
    the refresh token the other holds is spent; the other takes the stored tokens instead of
    failing, whether it notices by the expiry or by a 401."""
    c = await connect()
    other = DrChronoClient(
        c.http, c.keeper, UpstreamBudget(c.clock, 500, None), ResponseCache(c.clock), c.clock, FAST
    )
    c.clock.advance((c.first.expires_at - REFRESH_MARGIN - c.clock.now()).total_seconds() + 1)
    await c.call()  # this process refreshes
    [rotated] = c.keeper.saved

    await other.fetch_page(c.patients_url(page_size="1"), reason="test")
    assert c.keeper.saved == [rotated]  # no second refresh, and no failed one
    assert c.api_statuses() == [200, 200]

    # By a 401: the other process refreshed while this one held the old access token.
    third = DrChronoClient(
        c.http, c.keeper, UpstreamBudget(c.clock, 500, None), ResponseCache(c.clock), c.clock, FAST
    )
    await third.fetch_page(c.patients_url(page_size="2"), reason="test")
    c.sandbox.fail_next(1, "expire_token")
    await c.call()  # this process renews after a 401; the vendor retires the old token
    renewed = c.keeper.current
    await third.fetch_page(c.patients_url(page_size="3"), reason="test")
    assert c.keeper.current == renewed  # the third took it, and refreshed nothing
    # Its one 401 is its old token; it then retried with the stored one, refreshing nothing.
    assert c.api_statuses()[-4:] == [401, 200, 401, 200]
    assert len(c.keeper.saved) == 2


# -- the response cache and the meter ------------------------------------------------------


async def test_the_cache_serves_a_repeated_url_within_its_ttl(connect: Connect) -> None:
    c = await connect()
    url = c.patients_url(page_size="2")
    first = await c.client.fetch_page(url, reason="test", cache_ttl=60)

    c.clock.advance(59)
    with metered() as meter:
        again = await c.client.fetch_page(url, reason="test", cache_ttl=60)
    assert again == first
    assert meter.count == 0
    assert len(c.sandbox.api_requests()) == 1

    c.clock.advance(1)
    with metered() as meter:
        await c.client.fetch_page(url, reason="test", cache_ttl=60)
    assert meter.count == 1
    assert len(c.sandbox.api_requests()) == 2


async def test_records_are_cached_by_url_too(connect: Connect) -> None:
    c = await connect()
    [patient] = (await c.client.fetch_page(c.patients_url(page_size="1"), reason="t")).results
    for _ in range(2):
        record = await c.client.get_record("patients", str(patient["id"]), reason="t", cache_ttl=60)
        assert record is not None and record["id"] == patient["id"]
    assert len(c.sandbox.api_requests("patients")) == 2
    assert await c.client.get_record("patients", "999999999", reason="t") is None


async def test_every_vendor_call_is_metered(connect: Connect) -> None:
    c = await connect()
    c.sandbox.fail_next(1, "500")
    c.sandbox.fail_call(3, "timeout", timeout_seconds=30)
    with metered() as meter:
        await c.client.list_all(
            "patients", {"show_inactive": "true", "page_size": "2"}, reason="paging rule"
        )

    assert [(r.endpoint, r.status) for r in meter.calls] == [
        ("patients", 500),
        ("patients", 200),
        ("patients", 0),  # the timeout: no answer
        ("patients", 200),
        ("patients", 200),
    ]
    assert {r.reason for r in meter.calls} == {"paging rule"}
    assert meter.count == len(c.sandbox.api_requests())
