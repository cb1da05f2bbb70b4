"""What facade keeps to stay logged in at CareCloud, and where it keeps it (encrypted).

A CareCloud login is a username, a password and a TOTP secret; a session is a session token,
a refresh token and an expiry. The generic connection row (VendorCredentials) holds it all:
username → client_id, password → client_secret, session → access_token,
refresh → refresh_token, business entity → scope, TOTP secret → login_secret, all encrypted
at rest. No repr shows a secret.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Protocol

from facade.store.connections import ConnectionStore, VendorCredentials

#: The connection row's vendor key.
VENDOR = "carecloud"
#: A session that was never opened: expired since forever, so the first call logs in.
NEVER = datetime(1970, 1, 1, tzinfo=UTC)
_ENTITY_PREFIX = "business_entity:"


class InvalidTotpSecret(ValueError):
    """The TOTP secret is not base32 text (the message never repeats it)."""


def checked_totp_secret(text: str) -> str:
    """A base32 TOTP secret as authenticator enrolments show it (any case, spaces, missing
    `=` padding), normalised; InvalidTotpSecret when it is none, before any login is tried."""
    cleaned = "".join(text.split()).upper().rstrip("=")
    if not cleaned:
        raise InvalidTotpSecret("the TOTP secret is empty")
    try:
        base64.b32decode(cleaned + "=" * (-len(cleaned) % 8))
    except (binascii.Error, ValueError):
        raise InvalidTotpSecret("the TOTP secret is not base32 text") from None
    return cleaned


@dataclass(frozen=True)
class SessionTokens:
    """One answer of POST /authenticate (a login or a refresh)."""

    session_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expires_in: int
    business_entity_id: str = ""


@dataclass(frozen=True)
class CareCloudCredentials:
    base_url: str
    username: str
    password: str = field(repr=False)
    #: Base32, as the authenticator enrolment showed it.
    totp_secret: str = field(repr=False)
    session_token: str = field(default="", repr=False)
    refresh_token: str = field(default="", repr=False)
    #: UTC, timezone-aware.
    expires_at: datetime = NEVER
    business_entity_id: str = ""

    def with_session(self, tokens: SessionTokens, now: datetime) -> CareCloudCredentials:
        return replace(
            self,
            session_token=tokens.session_token,
            refresh_token=tokens.refresh_token,
            expires_at=now + timedelta(seconds=tokens.expires_in),
            business_entity_id=tokens.business_entity_id or self.business_entity_id,
        )

    def login_secrets(self) -> tuple[str, str, str, str]:
        """What a login sends (compared, never shown): a refused login is not tried again
        with the same ones."""
        return (self.base_url, self.username, self.password, self.totp_secret)

    def to_vendor_credentials(self) -> VendorCredentials:
        return VendorCredentials(
            base_url=self.base_url,
            client_id=self.username,
            client_secret=self.password,
            access_token=self.session_token,
            refresh_token=self.refresh_token,
            expires_at=self.expires_at,
            scope=_ENTITY_PREFIX + self.business_entity_id if self.business_entity_id else "",
            login_secret=self.totp_secret,
        )

    @classmethod
    def from_vendor_credentials(cls, stored: VendorCredentials) -> CareCloudCredentials:
        return cls(
            base_url=stored.base_url,
            username=stored.client_id,
            password=stored.client_secret,
            totp_secret=stored.login_secret,
            session_token=stored.access_token,
            refresh_token=stored.refresh_token,
            expires_at=stored.expires_at,
            business_entity_id=stored.scope.removeprefix(_ENTITY_PREFIX),
        )


class CareCloudKeeper(Protocol):
    """Where the session reads its credentials and writes renewed sessions."""

    def load(self) -> CareCloudCredentials: ...

    def save(self, credentials: CareCloudCredentials) -> None: ...


class MemoryKeeper:
    """Credentials that live as long as the process (the embedded sandbox, tests)."""

    def __init__(self, credentials: CareCloudCredentials):
        self.credentials = credentials

    def load(self) -> CareCloudCredentials:
        return self.credentials

    def save(self, credentials: CareCloudCredentials) -> None:
        self.credentials = credentials


class VendorKeeper(Protocol):
    """The runtime's generic keeper of one vendor connection (StoredCredentials,
    MemoryCredentials in facade/runtime.py)."""

    def load(self) -> VendorCredentials: ...

    def save(self, credentials: VendorCredentials) -> None: ...


class OverVendorKeeper:
    """CareCloud credentials through the runtime's generic keeper: what the vendor entry's
    client factory wraps around the keeper it is handed."""

    def __init__(self, keeper: VendorKeeper):
        self._keeper = keeper

    def load(self) -> CareCloudCredentials:
        return CareCloudCredentials.from_vendor_credentials(self._keeper.load())

    def save(self, credentials: CareCloudCredentials) -> None:
        self._keeper.save(credentials.to_vendor_credentials())


class _RowKeeper:
    """The CareCloud row of a ConnectionStore as a VendorKeeper."""

    def __init__(self, store: ConnectionStore):
        self._store = store

    def load(self) -> VendorCredentials:
        stored = self._store.load(VENDOR)
        if stored is None:
            raise LookupError("no stored CareCloud connection")
        return stored

    def save(self, credentials: VendorCredentials) -> None:
        self._store.save(VENDOR, credentials)


class StoredKeeper(OverVendorKeeper):
    """CareCloud credentials kept encrypted in the connection row (the TOTP secret too)."""

    def __init__(self, store: ConnectionStore):
        super().__init__(_RowKeeper(store))
        self._store = store

    def delete(self) -> None:
        self._store.delete(VENDOR)
