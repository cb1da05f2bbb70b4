"""DrChrono's entry in the vendor table (facade/vendors.py): everything vendor-specific the
generic code needs, each part imported only when it is used."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from facade.core.vendor import (
    ClientParts,
    Command,
    ContextLoader,
    EmbeddedSandbox,
    Vendor,
    VendorClient,
)
from facade.upstream.budget import CLOCK_HOUR
from facade.upstream.drchrono import commands
from facade.upstream.drchrono.groups import GROUPS
from facade.upstream.drchrono.webhooks import WEBHOOKS
from facade.upstream.drchrono.wire import VOCABULARY, WIRE

if TYPE_CHECKING:
    import httpx

    from facade.core.mapping import MappingContext
    from facade.core.registry import MappingRegistry
    from facade.store.connections import VendorCredentials

#: The embedded sandbox is reached in-process; this host name never touches the network.
SANDBOX_BASE_URL = "http://drchrono.sandbox"
SANDBOX_REDIRECT_URI = "http://127.0.0.1:8080/drchrono/callback"


def registry() -> MappingRegistry:
    from mappings.drchrono import REGISTRY

    return REGISTRY


def build_client(parts: ClientParts) -> VendorClient:
    from facade.upstream.drchrono.client import ClientPolicy, DrChronoClient

    return DrChronoClient(
        parts.http,
        parts.keeper,
        parts.budget,
        parts.cache,
        parts.clock,
        ClientPolicy(
            timeout_seconds=parts.timeout_seconds,
            retries=parts.retries,
            max_wait_seconds=parts.max_wait_seconds,
        ),
    )


def context_loader(client: VendorClient, lookup_ttl: float) -> ContextLoader:
    from facade.upstream.drchrono.client import DrChronoClient
    from facade.upstream.drchrono.practice_context import load_practice_context

    assert isinstance(client, DrChronoClient)

    async def load() -> MappingContext:
        current = await client.get_path("/api/users/current", reason="practice context: user")
        return await load_practice_context(
            client, current if isinstance(current, dict) else {}, lookup_ttl
        )

    return load


async def readiness_probe(client: VendorClient) -> object:
    """One doctor: a single call (users/current redirects: two) that proves the stored
    authorization still reads the practice."""
    return await client.fetch_page(
        client.list_url("doctors", WIRE.page_params(1)), reason="readiness probe"
    )


def _generate(patients: int, seed: int) -> Any:
    from facade.upstream.drchrono.sandbox.generator import generate
    from facade.upstream.drchrono.sandbox.state import SandboxState

    return SandboxState.with_default_app(generate(patients=patients, seed=seed), seed=seed)


def _app(state: Any) -> Any:
    from facade.upstream.drchrono.sandbox.app import create_sandbox_app

    return create_sandbox_app(state)


async def _login(http: httpx.AsyncClient, state: Any, now: datetime) -> VendorCredentials:
    """The sandbox's app, authorized through DrChrono's own OAuth flow (auto-approved)."""
    from facade.upstream.drchrono.connection import authorize_auto_approved

    app = state.default_app
    return await authorize_auto_approved(
        http, SANDBOX_BASE_URL, app.client_id, app.client_secret, SANDBOX_REDIRECT_URI, now
    )


def _patient_count(state: Any) -> int:
    return len(state.dataset.endpoint("patients"))


def demo_accounts(state: Any) -> list[tuple[str, str]]:
    """The first three patients and the first doctor, as (username, fhirUser)."""
    wanted: list[tuple[str, str]] = []
    for patient in state.dataset.endpoint("patients")[:3]:
        username = f"{str(patient['first_name']).lower()}.{str(patient['last_name']).lower()}"
        wanted.append((username, f"Patient/{patient['id']}"))
    doctor = state.dataset.endpoint("doctors")[0]
    wanted.append((f"dr.{str(doctor['last_name']).lower()}", f"Practitioner/{doctor['id']}"))
    return wanted


def describe_connection(stored: VendorCredentials) -> str:
    return f"DrChrono at {stored.base_url} (client {stored.client_id})"


VENDOR = Vendor(
    name="drchrono",
    title="DrChrono",
    registry=registry,
    build_client=build_client,
    context_loader=context_loader,
    readiness_probe=readiness_probe,
    quota=CLOCK_HOUR,
    groups=GROUPS,
    sandbox=EmbeddedSandbox(
        base_url=SANDBOX_BASE_URL,
        generate=_generate,
        app=_app,
        login=_login,
        patient_count=_patient_count,
        demo_accounts=demo_accounts,
    ),
    connect=Command(commands.add_connect_arguments, commands.connect),
    serve_sandbox=Command(commands.add_sandbox_arguments, commands.serve_sandbox),
    describe_connection=describe_connection,
    wire=WIRE,
    wire_vocabulary=VOCABULARY,
    webhooks=WEBHOOKS,
)
