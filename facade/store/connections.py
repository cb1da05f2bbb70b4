"""Stored vendor connections: the base URL, app credentials and tokens for one vendor account.

Secrets are encrypted before they reach the database and decrypted only on the way into a
vendor client. Their repr hides them so that no log line or traceback can carry one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlmodel import select

from facade.store.database import Database
from facade.store.models import UpstreamConnection
from facade.store.secrets import SecretBox


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class VendorCredentials:
    base_url: str
    client_id: str
    client_secret: str = field(repr=False)
    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    #: UTC, timezone-aware.
    expires_at: datetime
    scope: str = ""
    #: A second secret the vendor's login needs beside client_secret (a TOTP seed), or "".
    login_secret: str = field(default="", repr=False)


class ConnectionStore:
    def __init__(self, database: Database, box: SecretBox, clock: Callable[[], datetime] = utcnow):
        self._database = database
        self._box = box
        self._clock = clock

    def load(self, vendor: str) -> VendorCredentials | None:
        with self._database.session() as session:
            row = session.exec(
                select(UpstreamConnection).where(UpstreamConnection.vendor == vendor)
            ).first()
        if row is None:
            return None
        return VendorCredentials(
            base_url=row.base_url,
            client_id=row.client_id,
            client_secret=self._box.decrypt(row.client_secret_enc),
            access_token=self._box.decrypt(row.access_token_enc),
            refresh_token=self._box.decrypt(row.refresh_token_enc),
            expires_at=_as_utc(row.expires_at),
            scope=row.scope,
            login_secret=self._box.decrypt(row.login_secret_enc) if row.login_secret_enc else "",
        )

    def save(self, vendor: str, credentials: VendorCredentials) -> None:
        """Create or replace the vendor's connection in one transaction."""
        now = self._clock().astimezone(UTC)
        with self._database.session() as session:
            row = session.exec(
                select(UpstreamConnection).where(UpstreamConnection.vendor == vendor)
            ).first()
            if row is None:
                row = UpstreamConnection(
                    vendor=vendor,
                    base_url="",
                    client_id="",
                    client_secret_enc="",
                    access_token_enc="",
                    refresh_token_enc="",
                    expires_at=now,
                    created_at=now,
                    updated_at=now,
                )
            row.base_url = credentials.base_url
            row.client_id = credentials.client_id
            row.client_secret_enc = self._box.encrypt(credentials.client_secret)
            row.access_token_enc = self._box.encrypt(credentials.access_token)
            row.refresh_token_enc = self._box.encrypt(credentials.refresh_token)
            row.expires_at = credentials.expires_at.astimezone(UTC)
            row.scope = credentials.scope
            row.login_secret_enc = (
                self._box.encrypt(credentials.login_secret) if credentials.login_secret else ""
            )
            row.updated_at = now
            session.add(row)
            session.commit()

    def delete(self, vendor: str) -> None:
        with self._database.session() as session:
            row = session.exec(
                select(UpstreamConnection).where(UpstreamConnection.vendor == vendor)
            ).first()
            if row is not None:
                session.delete(row)
                session.commit()


def _as_utc(moment: datetime) -> datetime:
    """Databases without time zones hand back naive UTC; everything else is converted."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
