"""CareCloud's entry in the vendor table (facade/vendors.py): everything vendor-specific the
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
from facade.upstream.budget import QuotaRule
from facade.upstream.carecloud.connection import (
    add_connect_arguments,
    describe_connection,
    run_connect,
)
from facade.upstream.carecloud.groups import GROUPS
from facade.upstream.carecloud.webhooks import WEBHOOKS
from facade.upstream.carecloud.wire import VOCABULARY, WIRE

if TYPE_CHECKING:
    import httpx

    from facade.core.registry import MappingRegistry
    from facade.store.connections import VendorCredentials

#: The embedded sandbox is reached in-process; this host name never touches the network.
SANDBOX_BASE_URL = "http://carecloud.sandbox"
#: CareCloud throttles per user over a rolling hour, not by clock hour (upstreams.md §2.5).
ROLLING_HOUR = QuotaRule(window_seconds=3600, aligned=False)


def registry() -> MappingRegistry:
    from mappings.carecloud import REGISTRY

    return REGISTRY


def build_client(parts: ClientParts) -> VendorClient:
    from facade.upstream.carecloud.client import ClientPolicy
    from facade.upstream.carecloud.client import build_client as build
    from facade.upstream.carecloud.credentials import OverVendorKeeper

    return build(
        parts.http,
        OverVendorKeeper(parts.keeper),
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
    from facade.upstream.carecloud.client import CareCloudClient
    from facade.upstream.carecloud.practice_context import context_loader as loader

    assert isinstance(client, CareCloudClient)
    return loader(client, lookup_ttl)


async def readiness_probe(client: VendorClient) -> object:
    from facade.upstream.carecloud.client import CareCloudClient
    from facade.upstream.carecloud.practice_context import readiness_probe as probe

    assert isinstance(client, CareCloudClient)
    return await probe(client)


def _generate(patients: int, seed: int) -> Any:
    from facade.upstream.carecloud.sandbox.serve import embedded_state

    return embedded_state(patients, seed)


def _app(state: Any) -> Any:
    from facade.upstream.carecloud.sandbox.app import create_sandbox_app

    return create_sandbox_app(state)


async def _login(http: httpx.AsyncClient, state: Any, now: datetime) -> VendorCredentials:
    """The sandbox's API user, logged in through CareCloud's own flow (password and TOTP)."""
    from facade.upstream.carecloud.connection import log_in_at

    user = state.default_user
    return await log_in_at(
        http, SANDBOX_BASE_URL, user.username, user.password, user.totp_secret, now
    )


def _patient_count(state: Any) -> int:
    return len(state.dataset.patients)


def demo_accounts(state: Any) -> list[tuple[str, str]]:
    """The first three patients and the first provider, as (username, fhirUser): a Patient's
    FHIR id is its GUID as CareCloud writes it, a Practitioner's the provider id."""
    from facade.upstream.carecloud.sandbox.serve import showcase_people

    return [
        (username, f"{resource_type}/{str(vendor_id).lower()}")
        for username, resource_type, vendor_id in showcase_people(state)
    ]


def _connect_arguments(parser: Any) -> None:
    """The generic connect command declares the data directory and database itself."""
    add_connect_arguments(parser, storage_options=False)


def _sandbox_arguments(parser: Any) -> None:
    from facade.upstream.carecloud.sandbox.serve import add_sandbox_arguments

    add_sandbox_arguments(parser)


def _serve_sandbox(args: Any, settings: Any) -> int:
    from facade.upstream.carecloud.sandbox.serve import serve_sandbox

    return serve_sandbox(args, settings)


VENDOR = Vendor(
    name="carecloud",
    title="CareCloud",
    registry=registry,
    build_client=build_client,
    context_loader=context_loader,
    readiness_probe=readiness_probe,
    quota=ROLLING_HOUR,
    groups=GROUPS,
    sandbox=EmbeddedSandbox(
        base_url=SANDBOX_BASE_URL,
        generate=_generate,
        app=_app,
        login=_login,
        patient_count=_patient_count,
        demo_accounts=demo_accounts,
    ),
    connect=Command(_connect_arguments, run_connect),
    serve_sandbox=Command(_sandbox_arguments, _serve_sandbox),
    describe_connection=describe_connection,
    wire=WIRE,
    wire_vocabulary=VOCABULARY,
    webhooks=WEBHOOKS,
)
