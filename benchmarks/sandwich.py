"""The in-process transport sandwich the benchmarks drive: facade → DrChrono client → sandbox.

Same assembly as the tests (build_runtime + create_app over httpx.ASGITransport), tuned so
quotas and burst limits never throttle a measurement. It must never touch the network.
"""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx

from facade.app import create_app
from facade.auth.operator import Operator
from facade.clock import Clock
from facade.core.mapping import MappingContext
from facade.runtime import Runtime, build_runtime
from facade.settings import Settings
from facade.upstream.drchrono.sandbox.app import create_sandbox_app
from facade.upstream.drchrono.sandbox.dataset import SandboxDataset
from facade.upstream.drchrono.sandbox.generator import generate
from facade.upstream.drchrono.sandbox.state import SandboxLimits, SandboxState
from facade.upstream.drchrono.vendor import SANDBOX_BASE_URL
from mappings.drchrono.patient import CUSTOM_FIELD_ROLES

FACADE_BASE = "http://facade.bench"
FHIR_BASE = f"{FACADE_BASE}/fhir"
SEED = 1
#: Large enough that no benchmark run ever meets the hourly quota.
UNLIMITED_HOURLY = 10**9


def dataset_context(dataset: SandboxDataset) -> MappingContext:
    """The MappingContext facade would load, read straight from the dataset (no calls)."""
    users = {str(u["id"]): u for u in dataset.endpoint("users")}
    doctor_id = str(users[str(dataset.current_user_id)]["doctor"])
    doctor = next(d for d in dataset.endpoint("doctors") if str(d["id"]) == doctor_id)
    roles = {
        str(d["id"]): CUSTOM_FIELD_ROLES[str(d["template_name"])]
        for d in dataset.endpoint("custom_demographics")
        if str(d.get("template_name")) in CUSTOM_FIELD_ROLES and not d.get("archived")
    }
    return MappingContext(
        practice_group_id=str(dataset.practice_group_id),
        practice_name=dataset.practice_group_name,
        timezone=ZoneInfo(str(doctor.get("timezone") or "UTC")),
        custom_field_roles=roles,
    )


@dataclass
class Sandwich:
    """A running facade over its own sandbox, plus a direct client to that sandbox."""

    state: SandboxState
    runtime: Runtime
    #: FHIR client: facade app through ASGITransport.
    fhir: httpx.AsyncClient
    #: Vendor client: the sandbox app through ASGITransport, with a valid bearer token.
    vendor: httpx.AsyncClient

    def api_log_size(self) -> int:
        return len(self.state.api_requests())


@asynccontextmanager
async def sandwich(
    patients: int, *, page_cache_seconds: float = 120.0, seed: int = SEED
) -> AsyncIterator[Sandwich]:
    state = SandboxState.with_default_app(
        generate(patients=patients, seed=seed),
        seed=seed,
        limits=SandboxLimits(hourly_limit=UNLIMITED_HOURLY, burst_per_second=None),
    )
    with tempfile.TemporaryDirectory(prefix="facade-bench-") as data_dir:
        settings = Settings(
            data_dir=Path(data_dir),
            public_base_url=FHIR_BASE,
            upstream_hourly_limit=UNLIMITED_HOURLY,
            upstream_burst_per_second=0,
            upstream_page_cache_seconds=page_cache_seconds,
            # The benchmark is one client making thousands of requests a minute.
            client_requests_per_minute=0,
        )
        runtime = await build_runtime(settings, sandbox=state, clock=Clock())
        token = state.issue_tokens().access_token
        operator = Operator(runtime.database, runtime.box, Clock(), runtime.tokens)
        operator.add_client(
            name="benchmarks", redirect_uris=[], jwks='{"keys": []}', client_id="benchmarks"
        )
        # A practitioner-level token (an hour): every benchmark search is authorized as usual.
        fhir_token = operator.mint_token(client_id="benchmarks", scope="user/*.rs")
        fhir = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_app(settings, runtime)),
            base_url=FACADE_BASE,
            headers={"Authorization": f"Bearer {fhir_token}"},
        )
        vendor = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_sandbox_app(state)),
            base_url=SANDBOX_BASE_URL,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
        )
        try:
            yield Sandwich(state=state, runtime=runtime, fhir=fhir, vendor=vendor)
        finally:
            await fhir.aclose()
            await vendor.aclose()
            await runtime.aclose()
