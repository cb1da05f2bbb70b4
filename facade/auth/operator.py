"""Operator actions that need no HTTP: registering clients, creating users, minting a token
for a tool, disabling a client. Used by the CLI and by the sandbox's demo set-up.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from sqlmodel import select

from facade.auth.tokens import TokenService
from facade.clock import Clock
from facade.store.database import Database
from facade.store.models import OAuthClient, UserAccount
from facade.store.secrets import SecretBox

_hasher = PasswordHasher()


def hash_secret(secret: str) -> str:
    return _hasher.hash(secret)


@dataclass(frozen=True)
class RegisteredClient:
    client_id: str
    client_secret: str | None


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
    ) -> RegisteredClient:
        now = self._clock.now()
        asymmetric = bool(jwks or jwks_uri)
        secret = None if public or asymmetric else secrets.token_urlsafe(32)
        if asymmetric:
            json.loads(jwks or "{}")  # refuse a malformed inline JWKS now, not at first use
            grant_types = (*grant_types, "client_credentials")
        row = OAuthClient(
            client_id=client_id or secrets.token_urlsafe(16),
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
            created_at=now,
            updated_at=now,
        )
        with self._database.session() as session:
            session.add(row)
            session.commit()
        return RegisteredClient(row.client_id, secret)

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
