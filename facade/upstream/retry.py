"""The one request loop every vendor client runs: the call budget, retries with backoff after a
timeout, a transport error or a 5xx, waiting out a 429, redirects, and renewing an ended
session once.

It speaks HTTP, not any vendor's dialect: how a vendor says its session ended, how long its
429 asks facade to wait, which URLs are its own and how messages name it come in as
VendorRules. It never logs a token, and its messages never quote what the vendor answered.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Generic, Protocol, TypeVar
from urllib.parse import urljoin

import anyio
import httpx

from facade.clock import Clock
from facade.errors import (
    UpstreamAuthFailed,
    UpstreamError,
    UpstreamNotFound,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from facade.upstream.budget import (
    CallRecord,
    UpstreamBudget,
    Wait,
    WaitCause,
    record_call,
    throttled,
)

MAX_REDIRECTS = 3
#: A vendor that keeps answering 429 within the caller's limit is given up on after this many.
MAX_THROTTLE_ROUNDS = 5
REDIRECTS = frozenset({301, 302, 303, 307, 308})


@dataclass(frozen=True)
class ClientPolicy:
    """How long one call may take, how often a failed one is sent again and how long its
    backoff grows, and how long a caller that names no limit waits for the budget."""

    timeout_seconds: float = 20.0
    retries: int = 3
    backoff_base_seconds: float = 0.25
    backoff_cap_seconds: float = 4.0
    max_wait_seconds: float = 5.0


class Answer(Protocol):
    """What the loop reads of an answer (an httpx.Response is one)."""

    @property
    def status_code(self) -> int: ...

    @property
    def headers(self) -> httpx.Headers: ...


A = TypeVar("A", bound=Answer)


@dataclass(frozen=True)
class VendorRules(Generic[A]):
    """What the loop asks the vendor's client, because vendors differ in it."""

    #: How error messages name the vendor ("The EHR").
    name: str
    #: A token good for the next call (renewed first when it is about to end).
    token: Callable[[], Awaitable[str]]
    #: Renew the session whose token the vendor refused.
    renew: Callable[[str], Awaitable[None]]
    #: Whether a 401 means the session ended (renew and send again), not "you may not".
    session_ended: Callable[[A], bool]
    #: Seconds a 429 asks facade to wait, read as of `now`.
    throttle_wait: Callable[[A, datetime], float]
    #: The URL unchanged when the token may go there; raises UpstreamError when not.
    own_url: Callable[[str], str]
    #: The endpoint a URL is metered under (no record ids: it is logged).
    endpoint_of: Callable[[str], str]
    #: Logs one answered call (endpoint, status); never the URL's query or the answer.
    log_call: Callable[[str, int], None]


def retry_after(value: str, now: datetime) -> float | None:
    """Seconds a Retry-After header value asks for as of `now`: delta seconds or an HTTP date
    (a date without a zone is UTC); None when it names no wait a vendor's `throttle_wait` can
    read, which then says what an unstated wait means."""
    value = value.strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - now).total_seconds())


class RequestLoop(Generic[A]):
    """Sends one GET until it has an answer facade can use, or an error that says why not."""

    def __init__(
        self,
        rules: VendorRules[A],
        budget: UpstreamBudget,
        clock: Clock,
        policy: ClientPolicy,
        rng: random.Random | None = None,
    ):
        self.rules = rules
        self._budget = budget
        self._clock = clock
        self._policy = policy
        self._rng = rng or random.Random()

    async def get(
        self,
        url: str,
        send: Callable[[str, str], Awaitable[A]],
        *,
        reason: str,
        max_wait: float | None = None,
        missing_ok: bool = False,
        endpoint: str | None = None,
    ) -> A | None:
        """The 200 answer to GET `url`, sent by `send(url, token)`; None for a 404 when
        `missing_ok`. Every call is metered under `endpoint` when given (a redirect then
        counts as the endpoint asked for), else under the endpoint of the URL it went to."""
        rules, policy = self.rules, self._policy
        wait_limit = policy.max_wait_seconds if max_wait is None else max_wait
        failures = redirects = throttles = 0
        renewed = False
        while True:
            metered_as = endpoint if endpoint is not None else rules.endpoint_of(url)
            await self._budget.acquire(wait_limit)
            token = await rules.token()
            try:
                with anyio.fail_after(policy.timeout_seconds):
                    answer = await send(url, token)
            except (TimeoutError, httpx.TransportError) as error:
                record_call(CallRecord(metered_as, 0, reason))  # no answer: status 0
                failures += 1
                if failures > policy.retries:
                    timed_out = isinstance(error, TimeoutError | httpx.TimeoutException)
                    raise (UpstreamTimeout() if timed_out else UpstreamUnavailable()) from None
                await self._backoff(failures)
                continue
            status = answer.status_code
            record_call(CallRecord(metered_as, status, reason))
            rules.log_call(metered_as, status)
            if status in REDIRECTS:
                redirects += 1
                location = answer.headers.get("location")
                if not location or redirects > MAX_REDIRECTS:
                    raise UpstreamUnavailable(f"{rules.name} redirected facade too often.")
                # Send the same request (method and headers) to the new location.
                url = rules.own_url(urljoin(url, location))
                continue
            if status == 401 and not renewed and rules.session_ended(answer):
                renewed = True
                await rules.renew(token)
                continue
            if status in (401, 403):
                raise UpstreamAuthFailed()
            if status == 429:
                # Wait what the vendor said (budget.acquire sleeps it when it is within this
                # caller's limit), then ask again; never until the hour turns on a guess.
                throttles += 1
                wait = rules.throttle_wait(answer, self._clock.now())
                self._budget.throttled_by_vendor(wait)
                if wait > wait_limit or throttles > MAX_THROTTLE_ROUNDS:
                    raise throttled(Wait(wait, WaitCause.VENDOR))
                continue
            if status >= 500:
                failures += 1
                if failures > policy.retries:
                    raise UpstreamUnavailable()
                await self._backoff(failures)
                continue
            if status == 404:
                if missing_ok:
                    return None
                raise UpstreamNotFound(f"{rules.name} has no such resource (HTTP 404).")
            if status != 200:
                # What the vendor said of its refusal may echo the request: it stays out.
                raise UpstreamError(f"{rules.name} refused facade's request (HTTP {status}).")
            return answer

    async def _backoff(self, failures: int) -> None:
        """The k-th retry waits between half and all of min(cap, base * 2**(k-1))."""
        policy = self._policy
        ceiling = min(policy.backoff_cap_seconds, policy.backoff_base_seconds * 2 ** (failures - 1))
        await self._clock.sleep(ceiling / 2 + self._rng.random() * ceiling / 2)
