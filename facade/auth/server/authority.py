"""The authorization server's parts, built once per runtime and handed to the routes.

Everything environment-dependent comes in from outside: database, secret box, clock, the
transport and resolver used for jwks_uri, and the patient directory for the practitioner's
picker.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Protocol

import httpx
from argon2 import PasswordHasher

from facade.auth.keys import SigningKeys
from facade.auth.server.clients import ClientRegistry
from facade.auth.server.discovery import AuthEndpoints
from facade.auth.server.initial_tokens import InitialAccessTokens
from facade.auth.server.jwks import JwksFetcher, Resolver
from facade.auth.server.launch import LaunchContexts
from facade.auth.server.oauth import FacadeAuthorizationServer
from facade.auth.server.pages import Pages
from facade.auth.server.registration_rules import APPROVAL, AddressLimits, SharedAddressLimits
from facade.auth.server.sessions import SessionCodec
from facade.auth.server.users import UserRegistry
from facade.auth.tokens import TokenService
from facade.clock import Clock
from facade.store.database import Database
from facade.store.ledger import Ledger
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
class RegistrationPolicy:
    """How /auth/register treats a newcomer (FACADE_REGISTRATION)."""

    #: "approval" (every new client waits for an operator) or "open" (see registration_rules).
    mode: str
    #: FACADE_REGISTRATION_PER_HOUR attempts per source address.
    limits: AddressLimits
    #: Operator-minted tokens that let one registration start active.
    initial_tokens: InitialAccessTokens


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
    registration: RegistrationPolicy
    resource_types: list[str]


def build_authority(
    *,
    fhir_base: str,
    database: Database,
    box: SecretBox,
    session_key: bytes,
    clock: Clock,
    jwks_transport: httpx.AsyncBaseTransport | None = None,
    jwks_resolver: Resolver | None = None,
    keys: SigningKeys | None = None,
    tokens: TokenService | None = None,
    patients: PatientDirectory | None = None,
    registration_mode: str = APPROVAL,
    registration_per_hour: int = 10,
    resource_types: list[str] | None = None,
    password_hasher: PasswordHasher | None = None,
) -> Authority:
    endpoints = AuthEndpoints.for_fhir_base(fhir_base)
    keys = keys or SigningKeys(database, box, clock)
    tokens = tokens or TokenService(database, keys, clock, endpoints.issuer)
    clients = ClientRegistry(database, clock)
    users = UserRegistry(database, box, clock, hasher=password_hasher)
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
        # The transport and resolver are the network's unless a test injects its own; the
        # fetcher's address guard wraps either.
        jwks=JwksFetcher(
            clock,
            allow_http=fhir_base.startswith("http://"),
            resolver=jwks_resolver,
            transport=jwks_transport,
        ),
        server=server,
        pages=Pages(),
        patients=patients or NoDirectory(),
        registration=RegistrationPolicy(
            mode=registration_mode,
            limits=(
                SharedAddressLimits(Ledger(database), clock, registration_per_hour)
                if database.shared
                else AddressLimits(clock, registration_per_hour)
            ),
            initial_tokens=InitialAccessTokens(database, clock),
        ),
        resource_types=resource_types or [],
    )
