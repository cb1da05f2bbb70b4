"""The CareCloud sandbox in-process: a generated practice, a hand-moved clock set to the
reference day, and an httpx client reaching the app through ASGITransport (no network).
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest

from facade.upstream.carecloud.sandbox.app import create_sandbox_app
from facade.upstream.carecloud.sandbox.dataset import CareCloudDataset
from facade.upstream.carecloud.sandbox.generator import generate
from facade.upstream.carecloud.sandbox.state import ManualClock, SandboxState
from facade.upstream.carecloud.totp import totp

BASE_URL = "http://carecloud.sandbox"
PATIENTS = 60
SEED = 11
#: 10:00 in New York on the reference day (2026-06-01), when the generated "today" happens.
START = datetime(2026, 6, 1, 14, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def generated() -> CareCloudDataset:
    return generate(PATIENTS, SEED)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def state(generated: CareCloudDataset, clock: ManualClock) -> SandboxState:
    return SandboxState.create(copy.deepcopy(generated), seed=SEED, clock=clock)


@pytest.fixture
async def client(state: SandboxState) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_sandbox_app(state))
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as http:
        yield http


def login_body(state: SandboxState, **overrides: str) -> dict[str, str]:
    user = state.default_user
    body = {
        "username": user.username,
        "password": user.password,
        "mfa_code": totp(user.totp_secret, state.clock()),
    }
    body.update(overrides)
    return body


@pytest.fixture
async def api(client: httpx.AsyncClient, state: SandboxState) -> httpx.AsyncClient:
    """The same client, logged in (its Authorization header carries a fresh session)."""
    response = await client.post("/authenticate", json=login_body(state))
    assert response.status_code == 200
    client.headers["Authorization"] = f"Bearer {response.json()['session_token']}"
    return client
