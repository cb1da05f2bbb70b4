"""Shared fixtures: the transport sandwich of facade → vendor client → sandbox, in-process.

facade is driven through httpx.ASGITransport, and its vendor client reaches the sandbox app
through another ASGITransport: real code end to end, no network, nothing patched. The
vendor is DrChrono unless a suite runs once per vendor (`pytestmark = VENDORS`, from
tests/vendors.py): then `vendor_name` names it, and `sandbox` is that vendor's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from facade.app import create_app
from facade.clock import FakeClock
from facade.runtime import Runtime, build_runtime
from facade.settings import Settings
from facade.upstream.drchrono.sandbox.dataset import SandboxDataset
from facade.upstream.drchrono.sandbox.state import SandboxLimits, SandboxState
from tests.browser import CHROMIUM, Browser, missing_chromium
from tests.tokens import FreshToken
from tests.vendors import SANDBOX_SEED, generated, sandbox_state

FACADE_BASE = "http://facade.test"
FHIR_BASE = f"{FACADE_BASE}/fhir"


@pytest.fixture
def dataset() -> SandboxDataset:
    """DrChrono's generated sandbox data (a fresh copy), for DrChrono-only suites."""
    data: SandboxDataset = generated("drchrono")
    return data


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sandbox_limits() -> SandboxLimits:
    return SandboxLimits(burst_per_second=None)


@pytest.fixture
def vendor_name(request: pytest.FixtureRequest) -> str:
    """The vendor under test: DrChrono, or each vendor where a suite opts in (VENDORS)."""
    return str(getattr(request, "param", "drchrono"))


@pytest.fixture
def sandbox(vendor_name: str, clock: FakeClock, request: pytest.FixtureRequest) -> Any:
    """The vendor's sandbox state (for DrChrono, over `dataset` with `sandbox_limits`)."""
    if vendor_name != "drchrono":
        return sandbox_state(vendor_name, generated(vendor_name), clock)
    dataset: SandboxDataset = request.getfixturevalue("dataset")
    limits: SandboxLimits = request.getfixturevalue("sandbox_limits")
    return SandboxState.with_default_app(dataset, seed=SANDBOX_SEED, limits=limits, clock=clock.now)


@pytest.fixture
def settings(tmp_path: Path, vendor_name: str) -> Settings:
    return Settings(
        vendor=vendor_name,
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
async def runtime(settings: Settings, sandbox: Any, clock: FakeClock) -> AsyncIterator[Runtime]:
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
