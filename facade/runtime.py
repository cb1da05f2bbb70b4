"""Assembles a running facade from settings: database, vendor connection, client, service.

With a stored vendor connection it serves that account; without one it starts the embedded
sandbox and connects to it through the same OAuth flow and client. Everything that depends
on the environment is built here and handed down; nothing is created at import time.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from dataclasses import dataclass, field
from typing import Any

import httpx
from argon2 import PasswordHasher

from facade.auth.audit import SPILL_FILE, AuditLog, AuditWriter
from facade.auth.keys import SigningKeys
from facade.auth.ratelimit import ClientRateLimits, SharedRateLimits
from facade.auth.server import Authority, build_authority
from facade.auth.server.jwks import Resolver
from facade.auth.server.patients import ServicePatientDirectory
from facade.auth.tokens import TokenService
from facade.bulk.exports import BulkExports, build_exports
from facade.clock import Clock
from facade.core.service import FhirService, ServiceLimits
from facade.core.vendor import ClientParts, VendorClient
from facade.errors import FacadeError
from facade.fhir.paging import CursorCodec
from facade.mirror.runtime import Mirror, build_mirror
from facade.mirror.store import MirrorStore
from facade.mirror.webhooks import WebhookReceiver, build_receiver
from facade.readiness import Readiness
from facade.settings import Settings
from facade.store.connections import ConnectionStore, VendorCredentials
from facade.store.database import Database
from facade.store.ledger import Ledger
from facade.store.private_files import secure_data_dir
from facade.store.secrets import SecretBox, deployment_key
from facade.upstream.budget import QuotaRule, SharedBudget, UpstreamBudget
from facade.upstream.cache import ResponseCache
from facade.vendors import vendor

log = logging.getLogger("facade")


class InsecureConfiguration(Exception):
    """facade would serve real data over plain HTTP without being told that is intended."""


def insecure_http_refusal(settings: Settings, vendor_url: str) -> str | None:
    """Why facade must not serve a real vendor account on this configuration, or None."""
    if settings.base_url.startswith("https://") or settings.allow_http == "local-development":
        return None
    return (
        f"facade serves real patient data from {vendor_url} but its public base URL "
        f"({settings.base_url}) is plain HTTP. Run it behind TLS and set "
        "FACADE_PUBLIC_BASE_URL=https://..., or set FACADE_ALLOW_HTTP=local-development "
        "on a developer machine."
    )


def stored_vendor_url(settings: Settings) -> str | None:
    """The base URL of the stored vendor connection, if there is one."""
    secure_data_dir(settings.data_dir)
    database = Database(settings.resolved_database_url)
    try:
        database.migrate()
        box = SecretBox.from_settings(settings.secret_key, settings.data_dir)
        stored = ConnectionStore(database, box).load(settings.vendor)
        return stored.base_url if stored else None
    finally:
        database.dispose()


class StoredCredentials:
    """A client's credentials kept in the database (encrypted)."""

    def __init__(self, store: ConnectionStore, vendor: str):
        self._store = store
        self._vendor = vendor

    def load(self) -> VendorCredentials:
        credentials = self._store.load(self._vendor)
        if credentials is None:
            raise RuntimeError(f"no stored {self._vendor} connection")
        return credentials

    def save(self, credentials: VendorCredentials) -> None:
        self._store.save(self._vendor, credentials)


class MemoryCredentials:
    """Credentials that live as long as the process (the embedded sandbox's own)."""

    def __init__(self, credentials: VendorCredentials):
        self._credentials = credentials

    def load(self) -> VendorCredentials:
        return self._credentials

    def save(self, credentials: VendorCredentials) -> None:
        self._credentials = credentials


@dataclass
class Runtime:
    settings: Settings
    database: Database
    http: httpx.AsyncClient
    client: VendorClient
    service: FhirService
    box: SecretBox
    keys: SigningKeys
    tokens: TokenService
    audit: AuditWriter
    rate_limits: ClientRateLimits
    #: One line saying what facade is connected to (printed at start-up).
    upstream_description: str
    #: What /health/ready checks: the database, and the vendor (probed sparingly).
    readiness: Readiness
    #: The embedded sandbox's state (the vendor's), when facade serves one.
    sandbox: Any = None
    #: The SMART authorization server (token checks: `authorization.tokens`).
    authorization: Authority | None = None
    #: Bulk $export: jobs, worker, files, groups (the app starts and stops its worker).
    exports: BulkExports | None = None
    #: The vendor's webhooks (`/webhooks/{vendor}`), when a webhook secret is set.
    webhooks: WebhookReceiver | None = None
    #: The change-capture mirror (FACADE_MIRROR=on): its store, sync and scheduler (the app
    #: starts and stops the scheduler); None when it is off.
    mirror: Mirror | None = None
    _closed: bool = field(default=False, repr=False)

    async def upstream_problem(self) -> str | None:
        """Why the vendor cannot serve now, or None. Loads the practice context, which the
        first FHIR request would load anyway (4 calls, kept an hour): no extra vendor call.
        Bounded by one call's time limit, so a silent vendor does not hold up start-up
        through every retry."""
        limit = self.settings.upstream_timeout_seconds
        try:
            await asyncio.wait_for(self.service.context(), timeout=limit)
        except FacadeError as exc:
            return exc.message
        except TimeoutError:
            return f"The EHR did not answer within {limit:g} s."
        return None

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            if self.exports is not None:
                await self.exports.worker.stop()
            if self.mirror is not None:
                await self.mirror.aclose()  # before the client and database go
            await self.audit.aclose()  # before the database goes: waiting rows are written
            await self.http.aclose()
            if self.authorization is not None:
                await self.authorization.jwks.aclose()
            self.database.dispose()


def upstream_budget(
    database: Database, settings: Settings, clock: Clock, quota: QuotaRule
) -> UpstreamBudget:
    """The vendor quota: counted in the database when several processes may share it
    (PostgreSQL), so they spend one quota together; in memory for the single process on
    SQLite."""
    limit, burst = settings.upstream_hourly_limit, settings.upstream_burst_per_second or None
    if database.shared:
        key = f"vendor:{settings.vendor}"
        return SharedBudget(Ledger(database), key, clock, limit, burst, quota)
    return UpstreamBudget(clock, limit, burst, quota)


async def build_runtime(
    settings: Settings,
    *,
    clock: Clock | None = None,
    #: The embedded sandbox's state (the vendor's), when facade serves one.
    sandbox: Any = None,
    transport: httpx.AsyncBaseTransport | None = None,
    jwks_transport: httpx.AsyncBaseTransport | None = None,
    jwks_resolver: Resolver | None = None,
    password_hasher: PasswordHasher | None = None,
    tenant: str = "",
) -> Runtime:
    """Build facade's runtime for the settings' vendor. `sandbox` forces the embedded sandbox
    (tests pass their own state);
    `transport` replaces the network for a stored connection (tests); `jwks_transport` and
    `jwks_resolver` replace it and DNS for fetching clients' jwks_uri (tests); the address
    guard applies to both; `password_hasher` replaces argon2's default one (tests count
    its verifications); `tenant` names the practice the settings are for (its exports are
    queued under its name)."""
    clock = clock or Clock()
    entry = vendor(settings.vendor)
    # Owner-only from the first file on; a directory an older version left loose is tightened.
    secure_data_dir(settings.data_dir)
    database = Database(settings.resolved_database_url)
    database.migrate()
    box = SecretBox.from_settings(settings.secret_key, settings.data_dir)
    store = ConnectionStore(database, box, clock.now)
    stored = None if sandbox is not None else store.load(settings.vendor)

    keeper: StoredCredentials | MemoryCredentials
    if stored is not None:
        refusal = insecure_http_refusal(settings, stored.base_url)
        if refusal:
            raise InsecureConfiguration(refusal)
    if stored is not None:
        http = httpx.AsyncClient(transport=transport, timeout=settings.upstream_timeout_seconds)
        keeper = StoredCredentials(store, settings.vendor)
        description = entry.describe_connection(stored)
    else:
        if sandbox is None:
            sandbox = entry.sandbox.generate(settings.sandbox_patients, settings.sandbox_seed)
        # The sandbox's records live as long as the process: keep the garbage collector from
        # re-scanning them on every collection (it otherwise doubles the cost of mapping).
        gc.collect()
        gc.freeze()
        http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=entry.sandbox.app(sandbox)),
            base_url=entry.sandbox.base_url,
            timeout=settings.upstream_timeout_seconds,
        )
        keeper = MemoryCredentials(await entry.sandbox.login(http, sandbox, clock.now()))
        patients = entry.sandbox.patient_count(sandbox)
        description = (
            f"the embedded {entry.title} sandbox ({patients} synthetic patients, "
            f"seed {settings.sandbox_seed})"
        )

    budget = upstream_budget(database, settings, clock, entry.quota)
    client = entry.build_client(
        ClientParts(
            http=http,
            keeper=keeper,
            budget=budget,
            cache=ResponseCache(clock),
            clock=clock,
            timeout_seconds=settings.upstream_timeout_seconds,
            retries=settings.upstream_retries,
            max_wait_seconds=settings.upstream_max_wait_seconds,
        )
    )
    load_context = entry.context_loader(client, settings.upstream_lookup_cache_seconds)

    cursor_key = deployment_key(settings.secret_key, settings.data_dir)
    service = FhirService(
        entry.registry(),
        client,
        load_context,
        CursorCodec(cursor_key),
        settings.base_url,
        ServiceLimits(
            default_count=settings.default_page_size,
            max_count=settings.max_page_size,
            page_cache_seconds=settings.upstream_page_cache_seconds,
            lookup_cache_seconds=settings.upstream_lookup_cache_seconds,
        ),
        clock,
    )
    audit = AuditWriter(AuditLog(database, clock), spill=settings.data_dir / SPILL_FILE)
    audit.recover()  # rows the last run could not write, before this one serves anything
    keys = SigningKeys(database, box, clock)
    # One token service: the authorization server issues with it, FHIR requests verify with it.
    tokens = TokenService(database, keys, clock, settings.base_url)
    authorization = build_authority(
        fhir_base=settings.base_url,
        database=database,
        box=box,
        session_key=cursor_key,
        clock=clock,
        keys=keys,
        tokens=tokens,
        jwks_transport=jwks_transport,
        jwks_resolver=jwks_resolver,
        patients=ServicePatientDirectory(service),
        registration_mode=settings.registration_mode,
        registration_per_hour=settings.registration_per_hour,
        resource_types=list(service.registry.resource_types),
        password_hasher=password_hasher,
    )
    # One store for the webhook receiver's hints and the mirror's records, under the
    # deployment key.
    mirror = build_mirror(settings, database, cursor_key, client, service, clock)
    mirror_store = mirror.store if mirror else MirrorStore(database, cursor_key, clock)
    if mirror is not None:
        # Reads, searches and exports answer from the mirror where it holds the records.
        service.serve_from(mirror.serving_client())
    return Runtime(
        settings=settings,
        database=database,
        http=http,
        client=client,
        service=service,
        box=box,
        keys=keys,
        tokens=tokens,
        audit=audit,
        rate_limits=(
            SharedRateLimits(Ledger(database), clock, settings.client_requests_per_minute)
            if database.shared
            else ClientRateLimits(clock, settings.client_requests_per_minute)
        ),
        upstream_description=description,
        readiness=Readiness(
            database,
            lambda: entry.readiness_probe(client),
            budget,
            clock,
            audit,
        ),
        sandbox=sandbox,
        authorization=authorization,
        exports=build_exports(
            settings, database, service, service.client, clock, entry.groups, tenant
        ),
        webhooks=build_receiver(
            settings.vendor,
            entry.webhooks,
            settings.webhook_secret,
            mirror_store,
        ),
        mirror=mirror,
    )
