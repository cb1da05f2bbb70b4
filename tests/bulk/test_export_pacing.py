"""An export paces its vendor calls below the vendor's declared burst limit, so on a real
clock it meets no burst 429 from a vendor that enforces that limit exactly."""

from __future__ import annotations

from pathlib import Path

import pytest

from facade.clock import Clock
from facade.settings import Settings
from facade.upstream.drchrono import DECLARED_BURST_PER_SECOND
from facade.upstream.drchrono.sandbox.state import SandboxLimits
from tests.bulk.conftest import export
from tests.conftest import FHIR_BASE


@pytest.fixture
def clock() -> Clock:
    # Real time on both sides: the sandbox stamps each call as it arrives, facade paces as
    # it sends, and the moments differ by however long the call took to get there.
    return Clock()


@pytest.fixture
def sandbox_limits() -> SandboxLimits:
    # Small pages: many calls, so pacing binds for several seconds; calls take 0-50 ms to
    # arrive, as over a network.
    return SandboxLimits(
        burst_per_second=DECLARED_BURST_PER_SECOND,
        page_size_max=10,
        verbose_page_size_max=5,
        network_jitter_seconds=0.05,
    )


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        public_base_url=FHIR_BASE,
        upstream_burst_per_second=DECLARED_BURST_PER_SECOND,
        client_requests_per_minute=0,
    )


async def test_an_export_meets_no_burst_throttle(fhir, runtime, exports):
    manifest = await export(fhir, exports, "$export")

    assert manifest["output"]
    calls = runtime.sandbox.api_requests()
    throttled = [c for c in calls if c.status == 429]
    assert len(calls) > 3 * DECLARED_BURST_PER_SECOND  # long enough for pacing to bind
    assert throttled == []
