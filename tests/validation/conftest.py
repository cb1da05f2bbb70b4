"""Where the independent US Core validator and the certification notes live (../shared), and
facade over a large sandbox of the vendor under test (the suites here run once per vendor)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from facade.app import create_app
from facade.clock import FakeClock
from facade.runtime import Runtime, build_runtime
from facade.settings import Settings
from tests.conftest import FACADE_BASE, FHIR_BASE
from tests.mirror.serving import mirror_on
from tests.tokens import FreshToken
from tests.vendors import generated, sandbox_state

REPO = Path(__file__).resolve().parents[2]
#: A sandbox large enough that random patients add variety to the three showcase ones.
VALIDATION_PATIENTS = 40
#: Reading the whole sandbox takes more vendor calls than an hour's quota allows.
HOURLY_LIMIT = 100_000


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    shared = Path(os.environ.get("FACADE_SHARED_DIR", REPO.parent / "shared"))
    assert (shared / "tools" / "validator" / "validate.sh").exists(), (
        f"the shared folder with tools/validator is missing at {shared}; "
        "set FACADE_SHARED_DIR or clone beside ../shared"
    )
    return shared


@pytest.fixture
def mirror_mode() -> str:
    """ "live", or "mirror": answered from the mirror, backfilled first, with every vendor
    call from then on failing (so the sweep proves it asked the vendor nothing)."""
    return "live"


@pytest.fixture
async def sandbox_fhir(
    tmp_path: Path, vendor_name: str, mirror_mode: str
) -> AsyncIterator[httpx.AsyncClient]:
    clock = FakeClock()
    state = sandbox_state(
        vendor_name,
        generated(vendor_name, VALIDATION_PATIENTS, seed=1),
        clock,
        hourly_limit=HOURLY_LIMIT,
    )
    settings = Settings(
        vendor=vendor_name,
        data_dir=tmp_path / "data",
        public_base_url=FHIR_BASE,
        upstream_burst_per_second=0,
        upstream_hourly_limit=HOURLY_LIMIT,
        client_requests_per_minute=0,
    )
    runtime: Runtime = await build_runtime(settings, sandbox=state, clock=clock)
    if mirror_mode == "mirror":
        await mirror_on(runtime)
        state.fail_next(100_000, "500")
    app = create_app(settings, runtime)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=FACADE_BASE, auth=FreshToken(runtime)
    ) as c:
        yield c
    await runtime.aclose()
