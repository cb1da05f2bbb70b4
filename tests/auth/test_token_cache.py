"""A verified access token is remembered (by its hash) until it expires, so a request does
not verify its signature again, yet revoking it still works on the very next request:
from this process, from another process's `facade client disable`, or by revoking its whole
family (what a replayed refresh token or `facade user disable` does); and it stops at expiry.
On SQLite and on PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import pytest

from facade.admin import State
from facade.app import create_app
from facade.auth.tokens import USER_TOKEN_LIFETIME
from facade.clock import FakeClock
from facade.runtime import Runtime
from facade.upstream.drchrono.sandbox.dataset import SandboxDataset
from tests.conftest import FACADE_BASE
from tests.databases import postgres_database, settings  # noqa: F401  (fixtures)
from tests.tokens import TEST_CLIENT, ensure_client, token


@pytest.fixture
async def anonymous(runtime: Runtime) -> httpx.AsyncClient:
    app = create_app(runtime.settings, runtime)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=FACADE_BASE)


@pytest.fixture
def read(dataset: SandboxDataset) -> str:
    return f"/fhir/Patient/{dataset.endpoint('patients')[0]['id']}"


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


async def cached(client: httpx.AsyncClient, runtime: Runtime, read: str, access: str) -> None:
    """Two answered requests: the token is verified once and then served from the cache."""
    for _ in range(2):
        assert (await client.get(read, headers=bearer(access))).status_code == 200
    assert runtime.tokens.cached_tokens == 1
    assert access.encode() not in repr(runtime.tokens._cache).encode(), "kept by hash only"


async def test_a_cached_token_revoked_here_is_refused_on_the_next_request(
    anonymous: httpx.AsyncClient, runtime: Runtime, read: str
) -> None:
    access = token(runtime)
    await cached(anonymous, runtime, read, access)
    runtime.tokens.revoke(access, TEST_CLIENT)
    refused = await anonymous.get(read, headers=bearer(access))
    assert refused.status_code == 401
    assert 'error="invalid_token"' in refused.headers["WWW-Authenticate"]


async def test_a_client_disabled_by_another_process_is_refused_on_the_next_request(
    anonymous: httpx.AsyncClient, runtime: Runtime, read: str
) -> None:
    access = token(runtime)
    await cached(anonymous, runtime, read, access)
    environment = {k: v for k, v in os.environ.items() if not k.startswith("FACADE_")}
    disabled = subprocess.run(
        [sys.executable, "-c", "from facade.cli import main; raise SystemExit(main())"]
        + ["client", "disable", TEST_CLIENT, "--data-dir", str(runtime.settings.data_dir)]
        + ["--database-url", runtime.settings.resolved_database_url],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert disabled.returncode == 0, disabled.stderr
    assert (await anonymous.get(read, headers=bearer(access))).status_code == 401


async def test_a_family_revoked_through_another_database_handle_is_refused_at_once(
    anonymous: httpx.AsyncClient, runtime: Runtime, read: str
) -> None:
    ensure_client(runtime)
    access = runtime.tokens.issue_access_token(
        client_id=TEST_CLIENT, scope="user/*.rs", subject="dr", family="login-1"
    ).access_token
    await cached(anonymous, runtime, read, access)
    other = State(runtime.settings)  # what an operator command opens: its own engine
    try:
        other.tokens.revoke_family("login-1")
    finally:
        other.database.dispose()
    assert (await anonymous.get(read, headers=bearer(access))).status_code == 401


async def test_a_cached_token_stops_at_its_expiry(
    anonymous: httpx.AsyncClient, runtime: Runtime, read: str, clock: FakeClock
) -> None:
    access = token(runtime, "user/*.rs")
    await cached(anonymous, runtime, read, access)
    clock.advance(USER_TOKEN_LIFETIME.total_seconds() - 1)
    assert (await anonymous.get(read, headers=bearer(access))).status_code == 200
    clock.advance(1)
    assert (await anonymous.get(read, headers=bearer(access))).status_code == 401
    assert runtime.tokens.cached_tokens == 0, "an expired token is forgotten"
