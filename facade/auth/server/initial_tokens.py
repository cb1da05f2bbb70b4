"""Initial access tokens (RFC 7591 §3): an operator mints one (`facade client initial-token`)
and hands it to a trusted developer, whose `POST /auth/register` with
`Authorization: Bearer <token>` is then active at once, backend clients included.

A token is single-use and expires (a day by default). Only its sha256 is stored, in the
`issued_token` table under a family of its own (no schema of its own yet); it is never a
JWT, so it can never pass as an access token.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

from sqlalchemy import update
from sqlmodel import select

from facade.auth.tokens import token_hash
from facade.clock import Clock
from facade.store.database import Database
from facade.store.models import IssuedToken

DEFAULT_LIFETIME = timedelta(days=1)
MAX_LIFETIME = timedelta(days=30)
#: The `family` of an initial access token's row; its `client_id` is empty (no client yet).
FAMILY = "rfc7591-initial-access"


class InitialAccessTokens:
    def __init__(self, database: Database, clock: Clock):
        self._database = database
        self._clock = clock

    def mint(self, lifetime: timedelta = DEFAULT_LIFETIME) -> tuple[str, datetime]:
        """A new token and when it expires; the token is shown once and never stored."""
        if not timedelta(0) < lifetime <= MAX_LIFETIME:
            raise ValueError(f"an initial access token lives between 1 s and {MAX_LIFETIME}")
        token = secrets.token_urlsafe(32)
        expires_at = self._clock.now() + lifetime
        with self._database.session() as session:
            session.add(
                IssuedToken(
                    jti=token_hash(token), client_id="", family=FAMILY, expires_at=expires_at
                )
            )
            session.commit()
        return token, expires_at

    def is_valid(self, token: str) -> bool:
        """Minted here, not used yet and not expired (does not use it up)."""
        if not token:
            return False
        with self._database.session() as session:
            row = session.exec(
                select(IssuedToken).where(
                    IssuedToken.jti == token_hash(token), IssuedToken.family == FAMILY
                )
            ).first()
        return row is not None and not row.revoked and _aware(row.expires_at) > self._clock.now()

    def use(self, token: str) -> bool:
        """Use the token up; False when it was not valid (or another request used it first:
        the UPDATE matches one unused row at most once)."""
        if not token:
            return False
        with self._database.engine.begin() as connection:
            used = connection.execute(
                update(IssuedToken)
                .where(IssuedToken.jti == token_hash(token))  # type: ignore[arg-type]
                .where(IssuedToken.family == FAMILY)  # type: ignore[arg-type]
                .where(IssuedToken.revoked == False)  # type: ignore[arg-type]  # noqa: E712
                .where(IssuedToken.expires_at > self._clock.now())  # type: ignore[arg-type]
                .values(revoked=True)
            )
        return bool(used.rowcount == 1)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
