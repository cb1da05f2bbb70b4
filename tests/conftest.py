"""Shared fixtures: the transport sandwich of facade → DrChrono client → sandbox, in-process.

facade is driven through httpx.ASGITransport, and its DrChrono client reaches the sandbox
app through another ASGITransport: real code end to end, no network, nothing patched.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from facade.app import create_app
from facade.clock import FakeClock
from facade.runtime import Runtime, build_runtime
from facade.settings import Settings
from facade.upstream.drchrono.sandbox.dataset import SandboxDataset
from facade.upstream.drchrono.sandbox.generator import generate
from facade.upstream.drchrono.sandbox.state import SandboxLimits, SandboxState
from tests.browser import CHROMIUM, Browser, missing_chromium
from tests.tokens import FreshToken

FACADE_BASE = "http://facade.test"
FHIR_BASE = f"{FACADE_BASE}/fhir"
SANDBOX_PATIENTS = 12
SANDBOX_SEED = 7


@pytest.fixture(scope="session")
def generated() -> SandboxDataset:
    return generate(patients=SANDBOX_PATIENTS, seed=SANDBOX_SEED)


@pytest.fixture
def dataset(generated: SandboxDataset) -> SandboxDataset:
    return copy.deepcopy(generated)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sandbox_limits() -> SandboxLimits:
    return SandboxLimits(burst_per_second=None)


@pytest.fixture
def sandbox(
    dataset: SandboxDataset, clock: FakeClock, sandbox_limits: SandboxLimits
) -> SandboxState:
    return SandboxState.with_default_app(
        dataset, seed=SANDBOX_SEED, limits=sandbox_limits, clock=clock.now
    )


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        public_base_url=FHIR_BASE,
        upstream_burst_per_second=0,
        upstream_timeout_seconds=0.5,
        upstream_max_wait_seconds=5.0,
        # Suites make far more requests a minute than any client should; the limit has its
        # own test (tests/auth/test_fhir_access.py).
        client_requests_per_minute=0,
    )


@pytest.fixture
async def runtime(
    settings: Settings, sandbox: SandboxState, clock: FakeClock
) -> AsyncIterator[Runtime]:
    built = await build_runtime(settings, sandbox=sandbox, clock=clock)
    yield built
    await built.aclose()


@pytest.fixture
async def fhir(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(runtime.settings, runtime)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=FACADE_BASE, auth=FreshToken(runtime)
    ) as client:
        yield client


async def all_pages(client: httpx.AsyncClient, url: str, **kwargs: object) -> list[dict]:
    """Every resource of a search, following next links (absolute URLs, used as-is)."""
    resources: list[dict] = []
    next_url: str | None = url
    pages = 0
    while next_url:
        response = await client.get(next_url, **kwargs)  # type: ignore[arg-type]
        assert response.status_code == 200, response.text
        bundle = response.json()
        resources.extend(entry["resource"] for entry in bundle.get("entry", []))
        next_url = next(
            (link["url"] for link in bundle["link"] if link["relation"] == "next"), None
        )
        pages += 1
        assert pages < 500, "paging did not end"
    return resources


@pytest.fixture
async def warm_fhir(fhir: httpx.AsyncClient, runtime: Runtime) -> httpx.AsyncClient:
    """A facade client whose practice context (4 vendor calls, cached) is already loaded."""
    await runtime.service.context()
    return fhir


@pytest.fixture
def chromium() -> str:
    reason = missing_chromium()
    if reason:
        pytest.fail(reason)
    return CHROMIUM


@pytest.fixture
def browser(chromium: str, tmp_path: Path) -> Iterator[Browser]:
    """Headless Chromium with a fresh profile (tests/browser.py)."""
    profile = tmp_path / "chromium-profile"
    profile.mkdir()
    driven = Browser(profile)
    try:
        yield driven
    finally:
        driven.close()
