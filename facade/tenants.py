"""Tenants: several practices in one deployment, each with its own vendor account.

A tenant is a name, a vendor and a quota, registered in the deployment's database
(`facade tenant add`). Everything else a tenant has is its own, by construction rather than by
a column every query must remember: its own database (a SQLite file in its own data
directory, or its own PostgreSQL schema), its own key (derived from the deployment's for the
tenant's name), and so its own vendor connection, signing keys, users, clients, tokens,
launches, export jobs and files, groups, mirror, audit log and vendor quota. It is served at
its own base, `/{name}/fhir`, with its own `/{name}/auth`: a token's audience is its tenant's
base and its signature is the tenant's, so another tenant refuses it.

A deployment with no tenant registered is the single practice it always was, at `/fhir`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote

from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, select, text, update
from sqlalchemy.exc import IntegrityError

from facade.settings import Settings
from facade.store.database import Database
from facade.store.secrets import deployment_key
from facade.vendors import VENDORS

#: A tenant's name: its path segment, directory and schema name.
NAME = re.compile(r"[a-z][a-z0-9-]{0,39}")
#: First path segments facade serves itself: never a tenant's name.
RESERVED = frozenset(
    {"fhir", "auth", "health", "docs", "openapi.json", "webhooks", "static", "tenants"}
)

_TENANTS = Table(
    "tenant",
    MetaData(),
    Column("name", String(40), primary_key=True),
    Column("vendor", String(40), nullable=False),
    Column("status", String(20), nullable=False),
    Column("hourly_limit", Integer, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)


class TenantRefused(ValueError):
    """A tenant name or change facade cannot accept; the message says why."""


@dataclass(frozen=True)
class Tenant:
    name: str
    vendor: str
    status: str
    #: The vendor account's calls an hour; None: FACADE_UPSTREAM_HOURLY_LIMIT.
    hourly_limit: int | None = None

    @property
    def active(self) -> bool:
        return self.status == "active"


class TenantRegistry:
    """The deployment's tenants, in its own database."""

    def __init__(self, database: Database):
        self.database = database

    def add(self, name: str, vendor: str, hourly_limit: int | None = None) -> Tenant:
        if not NAME.fullmatch(name) or name in RESERVED:
            raise TenantRefused(
                f"{name!r} cannot name a tenant: use 1 to 40 lower-case letters, digits and "
                "hyphens, starting with a letter, and none of " + ", ".join(sorted(RESERVED))
            )
        if vendor not in VENDORS:
            raise TenantRefused(f"unknown vendor {vendor!r} (known: {', '.join(VENDORS)})")
        if hourly_limit is not None and hourly_limit < 1:
            raise TenantRefused("--hourly-limit must be at least 1")
        tenant = Tenant(name, vendor, "active", hourly_limit)
        try:
            with self.database.engine.begin() as db:
                db.execute(
                    _TENANTS.insert().values(
                        name=name,
                        vendor=vendor,
                        status="active",
                        hourly_limit=hourly_limit,
                        created_at=datetime.now(UTC),
                    )
                )
        except IntegrityError:
            raise TenantRefused(f"a tenant named {name!r} exists already") from None
        return tenant

    def all(self) -> list[Tenant]:
        with self.database.engine.connect() as db:
            rows = db.execute(select(_TENANTS).order_by(_TENANTS.c.name)).all()
        return [Tenant(r.name, r.vendor, r.status, r.hourly_limit) for r in rows]

    def get(self, name: str) -> Tenant | None:
        if not NAME.fullmatch(name):
            return None
        with self.database.engine.connect() as db:
            row = db.execute(select(_TENANTS).where(_TENANTS.c.name == name)).first()
        return Tenant(row.name, row.vendor, row.status, row.hourly_limit) if row else None

    def set_status(self, name: str, status: str) -> Tenant:
        with self.database.engine.begin() as db:
            changed = db.execute(
                update(_TENANTS).where(_TENANTS.c.name == name).values(status=status)
            ).rowcount
        found = self.get(name)
        if not changed or found is None:
            raise TenantRefused(f"there is no tenant named {name!r}")
        return found


def tenant_settings(settings: Settings, tenant: Tenant) -> Settings:
    """The settings a tenant's facade runs with: the deployment's, with the tenant's own data
    directory, database, key, vendor, quota and public base."""
    origin = settings.base_url.removesuffix("/fhir")
    return settings.with_overrides(
        data_dir=settings.data_dir / "tenants" / tenant.name,
        database_url=_tenant_database_url(settings, tenant.name),
        vendor=tenant.vendor,
        public_base_url=f"{origin}/{tenant.name}/fhir",
        secret_key=_tenant_key(settings, tenant.name),
        upstream_hourly_limit=tenant.hourly_limit,
    )


def schema_name(name: str) -> str:
    """The PostgreSQL schema of a tenant's tables."""
    return "tenant_" + name.replace("-", "_")


def create_tenant_schema(database: Database, name: str) -> None:
    """On PostgreSQL, the schema the tenant's tables live in (its migrations fill it)."""
    if database.shared:
        with database.engine.begin() as db:
            db.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema_name(name)}"'))


def _tenant_database_url(settings: Settings, name: str) -> str:
    """On PostgreSQL: the deployment's database, with the tenant's schema first on the search
    path. On SQLite: "" (a file in the tenant's data directory)."""
    if not settings.database_url.startswith("postgresql"):
        return ""
    joiner = "&" if "?" in settings.database_url else "?"
    option = quote(f"-csearch_path={schema_name(name)}", safe="")
    return f"{settings.database_url}{joiner}options={option}"


def _tenant_key(settings: Settings, name: str) -> str:
    """A Fernet key of the tenant's own, derived from the deployment's key material and the
    tenant's name (HMAC-SHA256): nothing sealed for one tenant opens for another."""
    master = deployment_key(settings.secret_key, settings.data_dir)
    derived = hmac.new(master, f"facade tenant {name}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(derived).decode()
