"""Operator actions that need no HTTP: registering, listing, approving and disabling
clients, minting initial access tokens for registration, creating users, minting a token
for a tool. Used by the CLI and by the sandbox's demo set-up.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from sqlmodel import select

from facade.auth.server.clients import new_client_id
from facade.auth.server.initial_tokens import InitialAccessTokens
from facade.auth.tokens import TokenService
from facade.clock import Clock
from facade.store.database import Database
from facade.store.models import (
    AuthorizationCodeRecord,
    OAuthClient,
    RefreshTokenRecord,
    UserAccount,
)
from facade.store.secrets import SecretBox

_hasher = PasswordHasher()


def hash_secret(secret: str) -> str:
    return _hasher.hash(secret)


@dataclass(frozen=True)
class RegisteredClient:
    client_id: str
    client_secret: str | None


def describe_client(row: OAuthClient, *, full: bool = False) -> dict[str, Any]:
    """A client as the operator sees it. Never its secret's or registration token's hash."""
    summary: dict[str, Any] = {
        "client_id": row.client_id,
        "name": row.name,
        "status": row.status,
        "auth_method": row.auth_method,
        "scope": row.scope,
        "self_registered": row.self_registered,
        "resource_server": row.resource_server,
    }
    if not full:
        return summary
    return {
        **summary,
        "redirect_uris": row.redirect_uris.split(),
        "grant_types": row.grant_types.split(),
        "jwks_uri": row.jwks_uri,
        "jwks": json.loads(row.jwks) if row.jwks else None,
        "created_at": row.created_at.isoformat(),
        "updated_at": row.updated_at.isoformat(),
    }


class Operator:
    def __init__(self, database: Database, box: SecretBox, clock: Clock, tokens: TokenService):
        self._database = database
        self._box = box
        self._clock = clock
        self._tokens = tokens

    def add_client(
        self,
        *,
        name: str,
        redirect_uris: list[str],
        public: bool = False,
        jwks: str = "",
        jwks_uri: str = "",
        scope: str = "",
        client_id: str | None = None,
        grant_types: tuple[str, ...] = ("authorization_code", "refresh_token"),
        resource_server: bool = False,
    ) -> RegisteredClient:
        """An operator-registered client: active at once, not self-registered.
        `resource_server`: it may introspect tokens issued to other clients."""
        now = self._clock.now()
        asymmetric = bool(jwks or jwks_uri)
        secret = None if public or asymmetric else secrets.token_urlsafe(32)
        if asymmetric:
            json.loads(jwks or "{}")  # refuse a malformed inline JWKS now, not at first use
            grant_types = (*grant_types, "client_credentials")
        row = OAuthClient(
            client_id=client_id or new_client_id(),
            name=name,
            secret_hash=hash_secret(secret) if secret else "",
            auth_method="none"
            if public
            else ("private_key_jwt" if asymmetric else "client_secret_basic"),
            redirect_uris=" ".join(redirect_uris),
            scope=scope,
            grant_types=" ".join(dict.fromkeys(grant_types)),
            jwks=jwks,
            jwks_uri=jwks_uri,
            status="active",
            resource_server=resource_server,
            created_at=now,
            updated_at=now,
        )
        with self._database.session() as session:
            session.add(row)
            session.commit()
        return RegisteredClient(row.client_id, secret)

    def clients(self, status: str | None = None) -> list[OAuthClient]:
        """Every client (or those with one status), oldest first."""
        query = select(OAuthClient).order_by(OAuthClient.id)  # type: ignore[arg-type]
        if status:
            query = query.where(OAuthClient.status == status)
        with self._database.session() as session:
            return list(session.exec(query).all())

    def client(self, client_id: str) -> OAuthClient | None:
        with self._database.session() as session:
            return session.exec(
                select(OAuthClient).where(OAuthClient.client_id == client_id)
            ).first()

    def mint_initial_access_token(self, lifetime: timedelta) -> tuple[str, datetime]:
        """A single-use RFC 7591 initial access token and when it expires."""
        return InitialAccessTokens(self._database, self._clock).mint(lifetime)

    def set_client_status(self, client_id: str, status: str) -> bool:
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
        if status == "disabled":
            self._tokens.revoke_client(client_id)
        return True

    def add_user(
        self, *, username: str, password: str, fhir_user: str, totp: bool = False
    ) -> str | None:
        """Create a login; returns the TOTP secret (to enrol in an authenticator) if asked.
        Raises WeakPassword, creating nothing, when the password policy refuses it."""
        # The registry the login pages use: one place creates users, so one policy holds.
        from facade.auth.server.users import UserRegistry

        registry = UserRegistry(self._database, self._box, self._clock)
        return registry.create(username, password, fhir_user, totp=totp) or None

    def users(self) -> list[dict[str, Any]]:
        """Every login as the operator sees it (never its password or TOTP secret)."""
        with self._database.session() as session:
            rows = session.exec(select(UserAccount).order_by(UserAccount.id)).all()  # type: ignore[arg-type]
        return [
            {
                "username": row.username,
                "fhirUser": row.fhir_user,
                "totp": bool(row.totp_secret_enc),
                "status": "disabled" if row.disabled_at is not None else "active",
                "created_at": row.created_at.isoformat(),
            }
            for row in rows
        ]

    def disable_user(self, username: str) -> bool:
        """The login can no longer log in, and every token issued through it (access and
        refresh, by the authorizations it made) is revoked now. False: no such user."""
        with self._database.session() as session:
            row = session.exec(select(UserAccount).where(UserAccount.username == username)).first()
            if row is None:
                return False
            now = self._clock.now()
            row.disabled_at = row.disabled_at or now
            row.updated_at = now
            session.add(row)
            families = set(
                session.exec(
                    select(AuthorizationCodeRecord.code_hash).where(
                        AuthorizationCodeRecord.username == username
                    )
                ).all()
            ) | set(
                session.exec(
                    select(RefreshTokenRecord.family).where(RefreshTokenRecord.username == username)
                ).all()
            )
            session.commit()
        for family in families:
            self._tokens.revoke_family(family)
        return True

    def has_user(self, username: str) -> bool:
        with self._database.session() as session:
            return (
                session.exec(select(UserAccount).where(UserAccount.username == username)).first()
                is not None
            )

    def mint_token(
        self, *, client_id: str, scope: str, patient_id: str = "", fhir_user: str = ""
    ) -> str:
        """An access token for a tool the operator runs (the client must exist and be active).
        System scopes make it a backend-service token (5 minutes); others last an hour."""
        backend = any(s.startswith("system/") for s in scope.split())
        issued = self._tokens.issue_access_token(
            client_id=client_id,
            scope=scope,
            subject=client_id if backend else fhir_user or client_id,
            patient_id=patient_id,
            fhir_user=fhir_user,
            backend=backend,
        )
        return issued.access_token
