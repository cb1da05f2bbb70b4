"""A CareCloudClient logged in to the CareCloud sandbox through the connect path's login, on
a FakeClock: every wait is counted instead of slept. What reached the vendor is read from the
sandbox's request log, and the /authenticate bodies (which the sandbox does not log: they
carry the password and code) from a recording transport in front of it.
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
from facade.upstream.budget import UpstreamBudget
from facade.upstream.cache import ResponseCache
from facade.upstream.carecloud.client import CareCloudClient, ClientPolicy
from facade.upstream.carecloud.connection import log_in
from facade.upstream.carecloud.credentials import CareCloudCredentials
from facade.upstream.carecloud.sandbox.app import create_sandbox_app
from facade.upstream.carecloud.sandbox.dataset import CareCloudDataset
from facade.upstream.carecloud.sandbox.generator import generate
from facade.upstream.carecloud.sandbox.state import SandboxState, SandboxUser
from facade.upstream.carecloud.session import CareCloudSession

BASE_URL = "http://carecloud.sandbox"
#: 10:00 in New York on the sandbox's reference day.
START = datetime(2026, 6, 1, 14, 0, tzinfo=UTC)
SEED = 5
#: 120 patients: three pages of 50.
PATIENTS = 120
#: Short real timeouts: the sandbox's "timeout" fault really sleeps, the client gives up.
FAST = ClientPolicy(timeout_seconds=0.05, retries=3, max_wait_seconds=10.0)
#: A base32 secret that is not the sandbox user's.
WRONG_SECRET = "MFRGGZDFMZTWQ2LKNNWG23TPOBYXE43U"


@dataclass(frozen=True)
class Authentication:
    """One POST /authenticate as it went out, and CareCloud's status."""

    body: dict[str, Any]
    status: int


class RecordingTransport(httpx.AsyncBaseTransport):
    """The sandbox app, with the /authenticate requests it answered remembered."""

    def __init__(self, state: SandboxState):
        self._inner = httpx.ASGITransport(app=create_sandbox_app(state))
        self.authentications: list[Authentication] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        if request.url.path == "/authenticate":
            body = json.loads(request.content)
            self.authentications.append(Authentication(body, response.status_code))
        return response


class RecordingKeeper:
    """Credentials in memory that remember every save (the session's renewals)."""

    def __init__(self, credentials: CareCloudCredentials):
        self.credentials = credentials
        self.saved: list[CareCloudCredentials] = []

    def load(self) -> CareCloudCredentials:
        return self.credentials

    def save(self, credentials: CareCloudCredentials) -> None:
        self.credentials = credentials
        self.saved.append(credentials)


@dataclass
class Connected:
    state: SandboxState
    clock: FakeClock
    transport: RecordingTransport
    keeper: RecordingKeeper
    session: CareCloudSession
    client: CareCloudClient
    first: CareCloudCredentials = field(init=False)

    def __post_init__(self) -> None:
        self.first = self.keeper.credentials

    @property
    def user(self) -> SandboxUser:
        return self.state.default_user

    @property
    def patients(self) -> list[dict[str, Any]]:
        return self.state.dataset.patients

    async def call(self) -> None:
        """One vendor call that succeeds when nothing is wrong."""
        await self.client.get_path("/authorization", reason="test")

    def statuses(self, endpoint: str | None = None) -> list[int]:
        """The statuses of the API calls (not /authenticate) the sandbox answered."""
        return [entry.status for entry in self.state.api_requests(endpoint)]

    def auth_calls(self) -> list[Authentication]:
        return list(self.transport.authentications)

    def logins(self) -> list[Authentication]:
        return [a for a in self.transport.authentications if "username" in a.body]

    def refreshes(self) -> list[Authentication]:
        return [a for a in self.transport.authentications if "grant_type" in a.body]

    def live_session(self, token: str) -> bool:
        session, _ = self.state.session_for(token)
        return session is not None

    def forget_sessions(self) -> None:
        """A vendor restart: every session and refresh token is gone."""
        self.state.sessions.clear()
        self.state.refresh_grants.clear()

    def lock_account(self) -> None:
        self.state.locked_until[self.user.username] = self.clock.now() + timedelta(minutes=15)


Connect = Callable[..., Awaitable[Connected]]


@pytest.fixture(name="practice", scope="module")
def practice_fixture() -> CareCloudDataset:
    return generate(PATIENTS, SEED)


@pytest.fixture(name="connect")
async def connect_fixture(practice: CareCloudDataset) -> AsyncIterator[Connect]:
    opened: list[httpx.AsyncClient] = []

    async def make(
        *,
        policy: ClientPolicy = FAST,
        password: str | None = None,
        totp_secret: str | None = None,
        hourly_limit: int = 1000,
        sandbox_hourly_budget: int = 1000,
    ) -> Connected:
        clock = FakeClock(START)
        state = SandboxState.create(
            copy.deepcopy(practice),
            seed=SEED,
            clock=clock.now,
            hourly_budget=sandbox_hourly_budget,
        )
        transport = RecordingTransport(state)
        http = httpx.AsyncClient(transport=transport)
        opened.append(http)
        user = state.default_user
        good = await log_in(http, BASE_URL, user.username, user.password, user.totp_secret, clock)
        # A keeper whose login secrets may be wrong (a password changed at CareCloud later).
        keeper = RecordingKeeper(
            CareCloudCredentials(
                base_url=good.base_url,
                username=good.username,
                password=password if password is not None else good.password,
                totp_secret=totp_secret if totp_secret is not None else good.totp_secret,
                session_token=good.session_token,
                refresh_token=good.refresh_token,
                expires_at=good.expires_at,
                business_entity_id=good.business_entity_id,
            )
        )
        session = CareCloudSession(http, keeper, clock, timeout_seconds=policy.timeout_seconds)
        client = CareCloudClient(
            http,
            session,
            UpstreamBudget(clock, hourly_limit, None),
            ResponseCache(clock),
            clock,
            policy,
        )
        return Connected(state, clock, transport, keeper, session, client)

    yield make
    for http in opened:
        await http.aclose()
