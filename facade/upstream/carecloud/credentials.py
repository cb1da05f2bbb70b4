"""What facade keeps to stay logged in at CareCloud, and where it keeps it (encrypted).

A CareCloud login is a username, a password and a TOTP secret; a session is a session token,
a refresh token and an expiry. The generic connection row (VendorCredentials) holds all but
the TOTP secret: username → client_id, password → client_secret, session → access_token,
refresh → refresh_token, business entity → scope. The TOTP secret sits beside it in a
`TotpSecretStore` (an encrypted file until the row has a field for it). No repr shows a secret.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

from facade.store.connections import ConnectionStore, VendorCredentials
from facade.store.private_files import open_private
from facade.store.secrets import SecretBox

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
        )

    @classmethod
    def from_vendor_credentials(
        cls, stored: VendorCredentials, totp_secret: str
    ) -> CareCloudCredentials:
        return cls(
            base_url=stored.base_url,
            username=stored.client_id,
            password=stored.client_secret,
            totp_secret=totp_secret,
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


class TotpSecretStore(Protocol):
    def load(self) -> str: ...

    def save(self, secret: str) -> None: ...

    def delete(self) -> None: ...


class TotpSecretFile:
    """The TOTP secret encrypted with the data directory's SecretBox in an owner-only file.

    Interim: it belongs in the connection row (an encrypted field) once the generic store
    has one; StoredKeeper takes any TotpSecretStore, so only the wiring changes then."""

    FILE_NAME = "carecloud-totp.enc"

    def __init__(self, path: Path, box: SecretBox):
        self._path = path
        self._box = box

    @classmethod
    def in_data_dir(cls, data_dir: Path, box: SecretBox) -> TotpSecretFile:
        return cls(data_dir / cls.FILE_NAME, box)

    def load(self) -> str:
        try:
            token = self._path.read_text(encoding="ascii").strip()
        except FileNotFoundError:
            raise LookupError("no stored CareCloud TOTP secret") from None
        return self._box.decrypt(token)

    def save(self, secret: str) -> None:
        with open_private(self._path, "w", encoding="ascii") as handle:
            handle.write(self._box.encrypt(secret))

    def delete(self) -> None:
        self._path.unlink(missing_ok=True)

    def __repr__(self) -> str:
        return f"TotpSecretFile({self._path.name})"


class MemoryTotpSecret:
    """A TOTP secret held for the life of the process (the embedded sandbox's user)."""

    def __init__(self, secret: str):
        self._secret = secret

    def load(self) -> str:
        return self._secret

    def save(self, secret: str) -> None:
        self._secret = secret

    def delete(self) -> None:
        self._secret = ""

    def __repr__(self) -> str:
        return "MemoryTotpSecret(<hidden>)"


class VendorKeeper(Protocol):
    """The runtime's generic keeper of one vendor connection (StoredCredentials,
    MemoryCredentials in facade/runtime.py)."""

    def load(self) -> VendorCredentials: ...

    def save(self, credentials: VendorCredentials) -> None: ...


class OverVendorKeeper:
    """CareCloud credentials through the runtime's generic keeper plus a TotpSecretStore:
    what the vendor entry's client factory wraps around the keeper it is handed. Once the
    connection row keeps the TOTP secret itself, the store argument goes away."""

    def __init__(self, keeper: VendorKeeper, totp: TotpSecretStore):
        self._keeper = keeper
        self._totp = totp
        self._totp_written: str | None = None

    def load(self) -> CareCloudCredentials:
        secret = self._totp.load()
        self._totp_written = secret
        return CareCloudCredentials.from_vendor_credentials(self._keeper.load(), secret)

    def save(self, credentials: CareCloudCredentials) -> None:
        # The secret first: a row without its secret could not log in again.
        if credentials.totp_secret != self._totp_written:
            self._totp.save(credentials.totp_secret)
            self._totp_written = credentials.totp_secret
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
    """CareCloud credentials kept encrypted: the connection row plus the TOTP secret."""

    def __init__(self, store: ConnectionStore, totp: TotpSecretStore):
        super().__init__(_RowKeeper(store), totp)
        self._store = store
        self._totp = totp

    def delete(self) -> None:
        self._store.delete(VENDOR)
        self._totp.delete()
        self._totp_written = None
