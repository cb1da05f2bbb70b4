"""The apps registered with facade's authorization server, and how each proves who it is.

Symmetric clients hold an argon2-hashed secret, public clients rely on PKCE, asymmetric
clients sign assertions with keys from an inline JWK Set or a `jwks_uri`. Secrets are never
stored or logged in the clear.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from authlib.oauth2.rfc6749 import ClientMixin
from sqlmodel import select

from facade.auth.scopes import parse_scope
from facade.auth.tokens import token_hash
from facade.clock import Clock
from facade.store.database import Database
from facade.store.models import OAuthClient

SYMMETRIC_METHODS = ("client_secret_basic", "client_secret_post")
AUTH_METHODS = (*SYMMETRIC_METHODS, "private_key_jwt", "none")
GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials")

_hasher = PasswordHasher()


def new_client_id() -> str:
    """A client id nobody can guess, in letters and digits only: an id starting with "-"
    (as token_urlsafe's can) reads as an option to `facade client show ID`."""
    return secrets.token_hex(16)


class ClientRegistrationError(ValueError):
    """The client's metadata is not acceptable (RFC 7591 invalid_client_metadata)."""


def grants_for(
    auth_method: str, redirect_uris: list[str], grant_types: list[str] | None
) -> list[str]:
    """The grant types a client gets: those it asked for, else client_credentials for a
    key-holding client without redirect URIs, else authorization_code with refresh."""
    if grant_types:
        return grant_types
    if auth_method == "private_key_jwt" and not redirect_uris:
        return ["client_credentials"]
    return ["authorization_code", "refresh_token"]


@dataclass(frozen=True)
class NewClient:
    """A freshly registered client; the secret is shown once and never again."""

    client: OAuthClient
    client_secret: str
    registration_access_token: str


class RegisteredClient(ClientMixin):
    """authlib's view of an OAuthClient row."""

    def __init__(self, row: OAuthClient):
        self.row = row

    @property
    def client_id(self) -> str:
        return self.row.client_id

    @property
    def redirect_uris(self) -> list[str]:
        return self.row.redirect_uris.split()

    @property
    def active(self) -> bool:
        return self.row.status == "active"

    @property
    def is_public(self) -> bool:
        return self.row.auth_method == "none"

    @property
    def is_asymmetric(self) -> bool:
        return self.row.auth_method == "private_key_jwt"

    def get_client_id(self) -> str:
        return self.row.client_id

    def get_default_redirect_uri(self) -> str:
        # SMART apps send redirect_uri every time; there is never a default.
        return ""

    def get_allowed_scope(self, scope: Any) -> str:
        if not scope:
            return ""
        if not isinstance(scope, str):
            scope = " ".join(scope)
        allowed = set(self.row.scope.split())
        return " ".join(s for s in dict.fromkeys(scope.split()) if _scope_allowed(s, allowed))

    def allows(self, scope: str) -> bool:
        return _scope_allowed(scope, set(self.row.scope.split()))

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        if not self.row.secret_hash or not client_secret:
            return False
        try:
            return bool(_hasher.verify(self.row.secret_hash, client_secret))
        except (VerificationError, InvalidHashError):
            return False

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if not self.active:
            return False
        registered = self.row.auth_method
        if registered in SYMMETRIC_METHODS:
            # A client with a secret may send it either way (Inferno uses Basic).
            return method in SYMMETRIC_METHODS
        if registered == "private_key_jwt":
            return method == "private_key_jwt"
        return method == "none" and registered == "none"

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and "authorization_code" in self.row.grant_types.split()

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.row.grant_types.split()

    def public_jwks(self) -> dict[str, Any] | None:
        return json.loads(self.row.jwks) if self.row.jwks else None


def _scope_allowed(scope: str, allowed: set[str]) -> bool:
    """A registered scope allows itself and its granular narrowings (`T.rs?category=…`).
    A client registered without scopes may ask for any but system/ ones (the user decides);
    system/ scopes are granted only when registered."""
    if not allowed:
        return not scope.startswith("system/")
    if scope in allowed:
        return True
    wanted = parse_scope(scope)
    if wanted is None:
        return False
    for registered in allowed:
        limit = parse_scope(registered)
        if (
            limit is not None
            and limit.context == wanted.context
            and limit.covers(wanted.resource_type)
            and wanted.permissions <= limit.permissions
            and (not limit.filters or limit.filters == wanted.filters)
        ):
            return True
    return False


class ClientRegistry:
    def __init__(self, database: Database, clock: Clock):
        self._database = database
        self._clock = clock

    def find(self, client_id: str) -> RegisteredClient | None:
        if not client_id:
            return None
        with self._database.session() as session:
            row = session.exec(
                select(OAuthClient).where(OAuthClient.client_id == client_id)
            ).first()
        return RegisteredClient(row) if row is not None else None

    def register(
        self,
        *,
        name: str,
        auth_method: str,
        redirect_uris: list[str],
        scope: str,
        grant_types: list[str] | None = None,
        jwks: dict[str, Any] | None = None,
        jwks_uri: str = "",
        status: str = "active",
        client_id: str = "",
        self_registered: bool = False,
    ) -> NewClient:
        """Store a client. Returns its secret (symmetric clients) and registration token.
        `self_registered`: it came through /auth/register (users see it as unverified)."""
        if auth_method not in AUTH_METHODS:
            raise ClientRegistrationError(f"token_endpoint_auth_method {auth_method!r}")
        grants = grants_for(auth_method, redirect_uris, grant_types)
        if any(g not in GRANT_TYPES for g in grants):
            raise ClientRegistrationError("unsupported grant type")
        if "authorization_code" in grants and not redirect_uris:
            raise ClientRegistrationError("redirect_uris are required for authorization_code")
        if "client_credentials" in grants and auth_method != "private_key_jwt":
            raise ClientRegistrationError("client_credentials requires private_key_jwt")
        if auth_method == "private_key_jwt" and not (jwks or jwks_uri):
            raise ClientRegistrationError("private_key_jwt requires jwks or jwks_uri")
        if jwks is not None and not isinstance(jwks.get("keys"), list):
            raise ClientRegistrationError("jwks must be a JWK Set")
        for uri in redirect_uris:
            if not uri.startswith(("https://", "http://")) or "#" in uri:
                raise ClientRegistrationError("redirect_uris must be absolute, without fragment")
        client_secret = secrets.token_urlsafe(32) if auth_method in SYMMETRIC_METHODS else ""
        registration_token = secrets.token_urlsafe(32)
        now = self._clock.now()
        row = OAuthClient(
            client_id=client_id or new_client_id(),
            name=name[:200],
            secret_hash=_hasher.hash(client_secret) if client_secret else "",
            auth_method=auth_method,
            redirect_uris=" ".join(redirect_uris),
            scope=" ".join(dict.fromkeys(scope.split())),
            grant_types=" ".join(grants),
            jwks=json.dumps(jwks) if jwks else "",
            jwks_uri=jwks_uri,
            status=status,
            registration_token_hash=token_hash(registration_token),
            self_registered=self_registered,
            created_at=now,
            updated_at=now,
        )
        with self._database.session() as session:
            session.add(row)
            session.commit()
            session.refresh(row)
        return NewClient(row, client_secret, registration_token)

    def set_status(self, client_id: str, status: str) -> bool:
        """Approve ("active"), hold ("pending") or disable ("disabled") a client."""
        if status not in ("active", "pending", "disabled"):
            raise ValueError(status)
        with self._database.session() as session:
            row = session.exec(
                select(OAuthClient).where(OAuthClient.client_id == client_id)
            ).first()
            if row is None:
                return False
            row.status = status
            row.updated_at = self._clock.now()
            session.add(row)
            session.commit()
        return True

    def pending(self) -> list[OAuthClient]:
        with self._database.session() as session:
            return list(
                session.exec(select(OAuthClient).where(OAuthClient.status == "pending")).all()
            )
