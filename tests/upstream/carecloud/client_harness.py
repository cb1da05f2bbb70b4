"""A CareCloudClient logged in to the fake CareCloud through the connect path's login, with a
FakeClock: every wait is counted instead of slept, and every request is in the fake's log."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

import httpx
import pytest

from facade.clock import FakeClock
from facade.upstream.budget import UpstreamBudget
from facade.upstream.cache import ResponseCache
from facade.upstream.carecloud.client import CareCloudClient, ClientPolicy
from facade.upstream.carecloud.connection import log_in
from facade.upstream.carecloud.credentials import CareCloudCredentials
from facade.upstream.carecloud.session import CareCloudSession
from tests.upstream.carecloud.fake_carecloud import (
    BASE_URL,
    PASSWORD,
    TOTP_SECRET,
    USERNAME,
    FakeCareCloud,
)

#: Short real timeouts: the fake's "timeout" fault really sleeps, the client gives up.
FAST = ClientPolicy(timeout_seconds=0.05, retries=3, max_wait_seconds=10.0)


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
    fake: FakeCareCloud
    clock: FakeClock
    keeper: RecordingKeeper
    session: CareCloudSession
    client: CareCloudClient

    async def call(self) -> None:
        """One vendor call that succeeds when nothing is wrong."""
        await self.client.get_path("/authorization", reason="test")


Connect = Callable[..., Awaitable[Connected]]


@pytest.fixture(name="connect")
async def connect_fixture() -> AsyncIterator[Connect]:
    opened: list[httpx.AsyncClient] = []

    async def make(
        *,
        policy: ClientPolicy = FAST,
        start: datetime | None = None,
        password: str = PASSWORD,
        totp_secret: str = TOTP_SECRET,
        hourly_limit: int = 1000,
        fake: FakeCareCloud | None = None,
    ) -> Connected:
        clock = fake.clock if fake is not None else FakeClock(start)
        fake = fake or FakeCareCloud.with_patients(clock)
        http = httpx.AsyncClient(transport=httpx.ASGITransport(app=fake.app()))
        opened.append(http)
        good = await log_in(http, BASE_URL, USERNAME, PASSWORD, TOTP_SECRET, clock)
        # A keeper whose login secrets may be wrong (a password changed at CareCloud later).
        keeper = RecordingKeeper(
            CareCloudCredentials(
                base_url=good.base_url,
                username=good.username,
                password=password,
                totp_secret=totp_secret,
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
        return Connected(fake, clock, keeper, session, client)

    yield make
    for http in opened:
        await http.aclose()
