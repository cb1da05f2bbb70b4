"""The request loop every vendor client runs, driven by a scripted in-process vendor: what it
retries and how long it backs off, how it waits out a 429, follows a redirect, renews an ended
session once, and which failures it turns into which facade error.

The vendor here is no real one: its rules (a 401 whose body says "ended" ends the session,
Retry-After in seconds) are the test's, so the loop is seen to take them from its caller.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import httpx
import pytest

from facade.clock import FakeClock
from facade.errors import (
    UpstreamAuthFailed,
    UpstreamError,
    UpstreamNotFound,
    UpstreamThrottled,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from facade.upstream.budget import UpstreamBudget, metered
from facade.upstream.retry import (
    MAX_REDIRECTS,
    MAX_THROTTLE_ROUNDS,
    ClientPolicy,
    RequestLoop,
    VendorRules,
)

BASE = "https://vendor.test/v1"
POLICY = ClientPolicy(
    timeout_seconds=5.0,
    retries=2,
    backoff_base_seconds=0.5,
    backoff_cap_seconds=0.75,
    max_wait_seconds=10.0,
)


class Silence:
    """A script step: the vendor takes the request and never answers."""


#: A step of the script: an answer, an exception the network raises instead, or silence.
Step = httpx.Response | Exception | Silence


def answer(status: int, body: bytes = b"{}", **headers: str) -> httpx.Response:
    return httpx.Response(status, headers=headers, content=body)


@dataclass
class ScriptedVendor:
    """Answers each GET with the next step of its script (200 once the script is spent), and
    remembers what it was sent. Its session token changes each time it is renewed."""

    script: list[Step] = field(default_factory=list)
    sent: list[tuple[str, str]] = field(default_factory=list)
    renewed: list[str] = field(default_factory=list)
    logged: list[tuple[str, int]] = field(default_factory=list)
    generation: int = 0

    async def token(self) -> str:
        return f"token-{self.generation}"

    async def renew(self, stale_token: str) -> None:
        self.renewed.append(stale_token)
        self.generation += 1

    async def send(self, url: str, token: str) -> httpx.Response:
        self.sent.append((url, token))
        step = self.script.pop(0) if self.script else answer(200, b'{"ok": true}')
        if isinstance(step, Exception):
            raise step
        if isinstance(step, Silence):
            await asyncio.sleep(3600)  # real time: only the loop's timeout ends it
            raise AssertionError("the loop's timeout did not cut the call off")
        return step

    def rules(self) -> VendorRules[httpx.Response]:
        return VendorRules(
            name="The vendor",
            token=self.token,
            renew=self.renew,
            session_ended=lambda response: response.content == b"ended",
            throttle_wait=_retry_after,
            own_url=_own_url,
            endpoint_of=lambda url: url.removeprefix(BASE + "/").split("?")[0],
            log_call=lambda endpoint, status: self.logged.append((endpoint, status)),
        )


def _retry_after(response: httpx.Response, now: datetime) -> float:
    return float(response.headers.get("retry-after", "60"))


def _own_url(url: str) -> str:
    if not url.startswith(BASE + "/"):
        raise UpstreamUnavailable("The vendor pointed facade at another host; refused.")
    return url


@dataclass
class Loop:
    vendor: ScriptedVendor
    clock: FakeClock
    budget: UpstreamBudget
    requests: RequestLoop[httpx.Response]

    async def get(self, path: str = "things", **options: object) -> httpx.Response | None:
        return await self.requests.get(
            f"{BASE}/{path}",
            self.vendor.send,
            reason="test",
            **options,  # type: ignore[arg-type]
        )


@pytest.fixture
def loop() -> Loop:
    vendor = ScriptedVendor()
    clock = FakeClock()
    budget = UpstreamBudget(clock, 100, None)
    return Loop(vendor, clock, budget, RequestLoop(vendor.rules(), budget, clock, POLICY))


def assert_backoff(slept: list[float]) -> None:
    """The k-th retry waits between half and all of min(cap, base * 2**(k-1))."""
    assert slept
    for k, seconds in enumerate(slept, start=1):
        ceiling = min(POLICY.backoff_cap_seconds, POLICY.backoff_base_seconds * 2 ** (k - 1))
        assert ceiling / 2 <= seconds <= ceiling


async def test_a_200_is_returned_as_it_came_and_the_call_is_metered_and_logged(
    loop: Loop,
) -> None:
    with metered() as meter:
        response = await loop.get("things?name=x")

    assert response is not None and response.json() == {"ok": True}
    assert loop.vendor.sent == [(f"{BASE}/things?name=x", "token-0")]
    assert [(c.endpoint, c.status, c.reason) for c in meter.calls] == [("things", 200, "test")]
    assert loop.vendor.logged == [("things", 200)]
    assert loop.budget.total_calls == 1


@pytest.mark.parametrize(
    ("failure", "error"),
    [
        (lambda: answer(503), UpstreamUnavailable),
        (lambda: httpx.ConnectError("refused"), UpstreamUnavailable),
        (lambda: httpx.ReadTimeout("slow"), UpstreamTimeout),
    ],
    ids=["5xx", "transport-error", "timeout"],
)
async def test_a_failure_is_retried_with_backoff_then_becomes_its_error(
    loop: Loop, failure: Callable[[], Step], error: type[UpstreamError]
) -> None:
    loop.vendor.script = [failure() for _ in range(POLICY.retries + 1)]
    with metered() as meter, pytest.raises(error):
        await loop.get()

    assert len(loop.vendor.sent) == POLICY.retries + 1
    assert len(meter.calls) == POLICY.retries + 1
    assert len(loop.clock.slept) == POLICY.retries
    assert_backoff(loop.clock.slept)


async def test_a_failure_within_the_retries_is_followed_by_the_answer(loop: Loop) -> None:
    loop.vendor.script = [answer(500), httpx.ReadTimeout("slow")]
    with metered() as meter:
        response = await loop.get()

    assert response is not None and response.status_code == 200
    assert [c.status for c in meter.calls] == [500, 0, 200]  # 0: no answer came
    assert_backoff(loop.clock.slept)


async def test_a_vendor_that_never_answers_is_cut_off_by_the_timeout() -> None:
    vendor = ScriptedVendor(script=[Silence()])  # the retry is answered
    clock = FakeClock()
    fast = ClientPolicy(timeout_seconds=0.05, retries=1)
    requests = RequestLoop(vendor.rules(), UpstreamBudget(clock, 100, None), clock, fast)

    response = await requests.get(f"{BASE}/things", vendor.send, reason="test")

    assert response is not None and response.status_code == 200
    assert len(vendor.sent) == 2


async def test_a_429_is_waited_out_for_what_the_vendor_said_then_asked_again(
    loop: Loop,
) -> None:
    loop.vendor.script = [answer(429, **{"Retry-After": "3"})]
    response = await loop.get()

    assert response is not None and response.status_code == 200
    assert loop.clock.slept == [3.0]  # the budget held the next call until then
    assert len(loop.vendor.sent) == 2


async def test_a_429_longer_than_the_caller_waits_is_throttled_with_the_vendors_wait(
    loop: Loop,
) -> None:
    loop.vendor.script = [answer(429, **{"Retry-After": "30"})]
    with pytest.raises(UpstreamThrottled) as raised:
        await loop.get(max_wait=5.0)

    assert raised.value.retry_after == 30.0
    assert "asked facade to wait" in raised.value.message
    assert len(loop.vendor.sent) == 1
    assert loop.budget.next_call().seconds == 30.0  # nobody else calls before then either


async def test_a_vendor_that_keeps_throttling_is_given_up_on(loop: Loop) -> None:
    loop.vendor.script = [answer(429, **{"Retry-After": "1"})] * (MAX_THROTTLE_ROUNDS + 1)
    with pytest.raises(UpstreamThrottled):
        await loop.get()
    assert len(loop.vendor.sent) == MAX_THROTTLE_ROUNDS + 1


async def test_an_ended_session_is_renewed_once_and_the_call_sent_again(loop: Loop) -> None:
    loop.vendor.script = [answer(401, b"ended")]
    response = await loop.get()

    assert response is not None and response.status_code == 200
    assert loop.vendor.renewed == ["token-0"]
    assert [token for _, token in loop.vendor.sent] == ["token-0", "token-1"]


@pytest.mark.parametrize(
    "script",
    [[answer(401, b"ended"), answer(401, b"ended")], [answer(401, b"denied")], [answer(403)]],
    ids=["ended-twice", "401-not-ended", "403"],
)
async def test_a_refusal_the_session_cannot_fix_is_an_auth_failure(
    loop: Loop, script: list[Step]
) -> None:
    loop.vendor.script = list(script)
    with pytest.raises(UpstreamAuthFailed):
        await loop.get()
    assert len(loop.vendor.renewed) == len(loop.vendor.sent) - 1


async def test_a_redirect_is_followed_on_the_vendors_own_urls(loop: Loop) -> None:
    loop.vendor.script = [answer(302, b"", location="/v1/other/7")]
    with metered() as meter:
        response = await loop.get("things/current")

    assert response is not None and response.status_code == 200
    assert [url for url, _ in loop.vendor.sent] == [f"{BASE}/things/current", f"{BASE}/other/7"]
    assert [c.endpoint for c in meter.calls] == ["things/current", "other/7"]


async def test_a_redirect_can_be_metered_as_the_endpoint_asked_for(loop: Loop) -> None:
    loop.vendor.script = [answer(302, b"", location="/v1/other/7")]
    with metered() as meter:
        await loop.get("things/current", endpoint="things/current")
    assert [c.endpoint for c in meter.calls] == ["things/current", "things/current"]


async def test_a_redirect_off_the_vendors_urls_is_refused_before_it_is_sent(loop: Loop) -> None:
    loop.vendor.script = [answer(302, b"", location="https://elsewhere.test/collect")]
    with pytest.raises(UpstreamUnavailable, match="another host"):
        await loop.get()
    assert len(loop.vendor.sent) == 1


async def test_endless_redirects_are_refused(loop: Loop) -> None:
    loop.vendor.script = [answer(302, b"", location="things")] * (MAX_REDIRECTS + 1)
    with pytest.raises(UpstreamUnavailable, match="The vendor redirected facade too often"):
        await loop.get()
    assert len(loop.vendor.sent) == MAX_REDIRECTS + 1


async def test_a_404_is_none_only_when_the_caller_allows_it(loop: Loop) -> None:
    loop.vendor.script = [answer(404)]
    assert await loop.get(missing_ok=True) is None

    loop.vendor.script = [answer(404, b'{"error": "no patient Smith"}')]
    with pytest.raises(UpstreamNotFound) as raised:
        await loop.get()
    assert raised.value.message == "The vendor has no such resource (HTTP 404)."
    assert "Smith" not in raised.value.message  # what the vendor said stays out


async def test_the_budget_is_asked_before_every_call_and_refuses_when_spent() -> None:
    vendor = ScriptedVendor(script=[answer(500)])
    clock = FakeClock()
    budget = UpstreamBudget(clock, 1, None)
    requests = RequestLoop(vendor.rules(), budget, clock, POLICY)

    with pytest.raises(UpstreamThrottled, match="hourly budget"):
        await requests.get(f"{BASE}/things", vendor.send, reason="test", max_wait=5.0)
    assert len(vendor.sent) == 1  # the retry would have been the hour's second call
