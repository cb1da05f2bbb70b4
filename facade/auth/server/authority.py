"""The authorization server's parts, built once per runtime and handed to the routes.

Everything environment-dependent comes in from outside: database, secret box, clock, the
HTTP client used for jwks_uri, and the patient directory for the practitioner's picker.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Protocol

import httpx

from facade.auth.keys import SigningKeys
from facade.auth.server.clients import ClientRegistry
from facade.auth.server.discovery import AuthEndpoints
from facade.auth.server.jwks import JwksFetcher
from facade.auth.server.launch import LaunchContexts
from facade.auth.server.oauth import FacadeAuthorizationServer
from facade.auth.server.pages import Pages
from facade.auth.server.sessions import SessionCodec
from facade.auth.server.users import UserRegistry
from facade.auth.tokens import TokenService
from facade.clock import Clock
from facade.store.database import Database
from facade.store.secrets import SecretBox


@dataclass(frozen=True)
class PatientChoice:
    id: str
    display: str


class PatientDirectory(Protocol):
    """How the picker finds patients; the runtime adapts the FHIR service to it."""

    async def search(self, text: str) -> list[PatientChoice]: ...

    async def exists(self, patient_id: str) -> bool: ...


class NoDirectory:
    """No patient list: the picker asks for an id and takes it as given."""

    async def search(self, text: str) -> list[PatientChoice]:
        return []

    async def exists(self, patient_id: str) -> bool:
        return bool(patient_id)


@dataclass
class Authority:
    endpoints: AuthEndpoints
    clients: ClientRegistry
    users: UserRegistry
    keys: SigningKeys
    tokens: TokenService
    launches: LaunchContexts
    sessions: SessionCodec
    jwks: JwksFetcher
    server: FacadeAuthorizationServer
    pages: Pages
    patients: PatientDirectory
    #: FACADE_REGISTRATION_APPROVAL: dynamically registered clients wait for an operator.
    registration_approval: bool
    resource_types: list[str]


def build_authority(
    *,
    fhir_base: str,
    database: Database,
    box: SecretBox,
    session_key: bytes,
    clock: Clock,
    jwks_http: httpx.AsyncClient,
    keys: SigningKeys | None = None,
    tokens: TokenService | None = None,
    patients: PatientDirectory | None = None,
    registration_approval: bool = False,
    resource_types: list[str] | None = None,
) -> Authority:
    endpoints = AuthEndpoints.for_fhir_base(fhir_base)
    keys = keys or SigningKeys(database, box, clock)
    tokens = tokens or TokenService(database, keys, clock, endpoints.issuer)
    clients = ClientRegistry(database, clock)
    users = UserRegistry(database, box, clock)
    server = FacadeAuthorizationServer(
        database=database,
        clients=clients,
        users=users,
        tokens=tokens,
        clock=clock,
        token_url=endpoints.token,
        style_url=endpoints.style,
    )
    return Authority(
        endpoints=endpoints,
        clients=clients,
        users=users,
        keys=keys,
        tokens=tokens,
        launches=LaunchContexts(database, clock, endpoints.issuer),
        sessions=SessionCodec(hashlib.sha256(session_key).digest(), clock),
        # Plain-http key URLs only when facade itself runs without TLS (local, sandbox).
        jwks=JwksFetcher(jwks_http, clock, allow_http=fhir_base.startswith("http://")),
        server=server,
        pages=Pages(),
        patients=patients or NoDirectory(),
        registration_approval=registration_approval,
        resource_types=resource_types or [],
    )
