"""Smoke test: the sandbox serves a generated practice, and paging reaches every record."""

from __future__ import annotations

import pytest

from facade.upstream.drchrono.sandbox.dataset import ENDPOINTS
from facade.upstream.drchrono.sandbox.state import SandboxLimits, SandboxState
from tests.upstream.sandbox.app_harness import sandbox_client

generator = pytest.importorskip("facade.upstream.drchrono.sandbox.generator")

#: Asks for everything: hidden rows shown, and the date filter two endpoints require.
SHOW_ALL = "show_inactive=true&show_archived=true&since=1900-01-01&page_size=7"


@pytest.mark.parametrize("verbose", [False, True])
async def test_paging_through_every_endpoint_returns_every_record(verbose: bool) -> None:
    dataset = generator.generate(patients=5, seed=1)
    state = SandboxState.with_default_app(
        dataset, limits=SandboxLimits(hourly_limit=10_000, burst_per_second=None)
    )
    async with sandbox_client(state) as client:
        for name in ENDPOINTS:
            url: str | None = f"/api/{name}?{SHOW_ALL}" + ("&verbose=true" if verbose else "")
            seen: list[object] = []
            while url:
                response = await client.get(url)
                assert response.status_code == 200, (name, response.text)
                body = response.json()
                seen += [record["id"] for record in body["results"]]
                url = body["next"]
            expected = sorted(str(record["id"]) for record in dataset.endpoint(name))
            assert sorted(str(i) for i in seen) == expected, name
            if name == "patients":
                ccda = await client.get(f"/api/patients/{seen[0]}/ccda")
                assert ccda.status_code == 200
