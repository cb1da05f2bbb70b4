"""The in-process transport sandwich the benchmarks drive: facade → vendor client → sandbox.

Same assembly as the tests (build_runtime + create_app over httpx.ASGITransport), tuned so
quotas and burst limits never throttle a measurement; `vendor_name` picks the vendor (DrChrono
by default). What differs between the vendors' sandboxes is read through the functions here.
It must never touch the network.
"""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from facade.app import create_app
from facade.auth.operator import Operator
from facade.clock import Clock
from facade.core.mapping import MappingContext
from facade.runtime import Runtime, build_runtime
from facade.settings import Settings
from facade.upstream.drchrono.sandbox.dataset import SandboxDataset
from facade.upstream.drchrono.sandbox.generator import generate
from facade.upstream.drchrono.sandbox.state import SandboxLimits, SandboxState
from facade.vendors import DEFAULT_VENDOR, vendor
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


def unlimited_sandbox(vendor_name: str, patients: int, seed: int = SEED) -> Any:
    """The vendor's sandbox over `patients` generated patients, with no quota or burst limit."""
    if vendor_name == "drchrono":
        return SandboxState.with_default_app(
            generate(patients=patients, seed=seed),
            seed=seed,
            limits=SandboxLimits(hourly_limit=UNLIMITED_HOURLY, burst_per_second=None),
        )
    if vendor_name == "carecloud":
        from facade.upstream.carecloud.sandbox.serve import embedded_state

        return embedded_state(patients, seed, hourly_budget=UNLIMITED_HOURLY)
    raise ValueError(f"no benchmark sandbox for vendor {vendor_name!r}")


def sandbox_bearer(vendor_name: str, state: Any) -> str:
    """A bearer token the sandbox accepts (DrChrono's OAuth token, CareCloud's session)."""
    if vendor_name == "drchrono":
        return str(state.issue_tokens().access_token)
    return str(state.issue_session()["session_token"])


def sandbox_patient_ids(vendor_name: str, state: Any) -> list[str]:
    """The FHIR ids of the sandbox's patients, in the vendor's order."""
    if vendor_name == "drchrono":
        return [str(p["id"]) for p in state.dataset.endpoint("patients")]
    return [str(p["id"]).lower() for p in state.dataset.patients]


@dataclass
class Sandwich:
    """A running facade over its own sandbox, plus a direct client to that sandbox."""

    vendor_name: str
    #: The vendor's sandbox state (its dataset and request log).
    state: Any
    runtime: Runtime
    #: FHIR client: facade app through ASGITransport.
    fhir: httpx.AsyncClient
    #: Vendor client: the sandbox app through ASGITransport, with a valid bearer token.
    vendor: httpx.AsyncClient

    def api_log_size(self) -> int:
        return len(self.state.api_requests())

    def patient_ids(self) -> list[str]:
        return sandbox_patient_ids(self.vendor_name, self.state)


@asynccontextmanager
async def sandwich(
    patients: int,
    *,
    page_cache_seconds: float = 120.0,
    seed: int = SEED,
    vendor_name: str = DEFAULT_VENDOR,
) -> AsyncIterator[Sandwich]:
    state = unlimited_sandbox(vendor_name, patients, seed)
    entry = vendor(vendor_name)
    with tempfile.TemporaryDirectory(prefix="facade-bench-") as data_dir:
        settings = Settings(
            vendor=vendor_name,
            data_dir=Path(data_dir),
            public_base_url=FHIR_BASE,
            upstream_hourly_limit=UNLIMITED_HOURLY,
            upstream_burst_per_second=0,
            upstream_page_cache_seconds=page_cache_seconds,
            # The benchmark is one client making thousands of requests a minute.
            client_requests_per_minute=0,
        )
        runtime = await build_runtime(settings, sandbox=state, clock=Clock())
        token = sandbox_bearer(vendor_name, state)
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
        direct = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=entry.sandbox.app(state)),
            base_url=entry.sandbox.base_url,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
        )
        try:
            yield Sandwich(
                vendor_name=vendor_name, state=state, runtime=runtime, fhir=fhir, vendor=direct
            )
        finally:
            await fhir.aclose()
            await direct.aclose()
            await runtime.aclose()
