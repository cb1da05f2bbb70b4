"""Issuing, verifying, rotating and revoking tokens.

Access tokens and id_tokens are JWTs signed with facade's rotating keys; every access token
is recorded by its jti so revocation and introspection are exact. Refresh tokens are opaque,
stored only as hashes, rotated on use; presenting a used one revokes its whole family.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from sqlalchemy import bindparam, update
from sqlmodel import select

from facade.auth.grant import Grant
from facade.auth.keys import ALGORITHM, SigningKeys
from facade.auth.scopes import PATIENT_USER, ScopeSet, user_kind
from facade.clock import Clock
from facade.store.database import Database
from facade.store.models import IssuedToken, OAuthClient, RefreshTokenRecord, UserAccount

USER_TOKEN_LIFETIME = timedelta(hours=1)
BACKEND_TOKEN_LIFETIME = timedelta(minutes=5)
#: SMART/ONC: refresh tokens for offline access last at least three months, renewed on use.
OFFLINE_REFRESH_LIFETIME = timedelta(days=90)
ONLINE_REFRESH_LIFETIME = timedelta(hours=12)
#: The claim recording who logged in: "patient", "practitioner", or "" (no user, a tool).
USER_KIND_CLAIM = "user_kind"


#: Verified access tokens kept per process (beyond it the expired, then the oldest, go).
VERIFIED_TOKENS_KEPT = 10_000
#: Whether a token still stands: recorded, not revoked, its client active.
_STANDING = (
    select(IssuedToken.revoked, OAuthClient.status)
    .join(OAuthClient, OAuthClient.client_id == IssuedToken.client_id)  # type: ignore[arg-type]
    .where(IssuedToken.jti == bindparam("jti"))
    .where(IssuedToken.client_id == bindparam("client"))
)


class TokenRejected(Exception):
    """The token is not one facade issued, or it expired, or it was revoked. The message
    says which, for the client (the 401's error_description): it names no secret, only
    what the token itself claims and this server's own base URL."""


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class IssuedAccess:
    access_token: str
    expires_in: int
    jti: str


@dataclass
class _Verified:
    """A verified access token, cached by the sha256 of the token (never the token itself)
    until it expires: its claims and, once asked for, its Grant."""

    claims: dict[str, Any]
    expires: int
    jti: str
    client_id: str
    grant: Grant | None = None


@dataclass(frozen=True)
class RefreshGrant:
    """What a refresh token stands for."""

    client_id: str
    username: str
    scope: str
    patient_id: str
    encounter_id: str
    family: str
    kind: str


class TokenService:
    def __init__(self, database: Database, keys: SigningKeys, clock: Clock, issuer: str):
        self._database = database
        self._keys = keys
        self._clock = clock
        #: The FHIR base URL: the `iss` and `aud` of every token.
        self.issuer = issuer.rstrip("/")
        #: sha256(token) → its verification: the signature and claims are checked once per
        #: token, not once per request (see `_verified`).
        self._cache: dict[bytes, _Verified] = {}

    # -- access tokens ----------------------------------------------------------------------

    def issue_access_token(
        self,
        *,
        client_id: str,
        scope: str,
        subject: str,
        patient_id: str = "",
        encounter_id: str = "",
        fhir_user: str = "",
        family: str = "",
        backend: bool = False,
        kind: str | None = None,
    ) -> IssuedAccess:
        """`kind` is who logged in (PATIENT_USER, PRACTITIONER_USER); by default it is read
        from `fhir_user`. It is recorded in the token so a patient's token stays confined."""
        now = self._clock.now()
        lifetime = BACKEND_TOKEN_LIFETIME if backend else USER_TOKEN_LIFETIME
        jti = secrets.token_hex(16)
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.issuer,
            "sub": subject,
            "client_id": client_id,
            "scope": scope,
            "iat": int(now.timestamp()),
            "exp": int((now + lifetime).timestamp()),
            "jti": jti,
        }
        if patient_id:
            claims["patient"] = patient_id
        if encounter_id:
            claims["encounter"] = encounter_id
        if fhir_user:
            claims["fhirUser"] = fhir_user
        if backend:
            claims["backend"] = True
        claims[USER_KIND_CLAIM] = user_kind(fhir_user) if kind is None else kind
        key = self._keys.current()
        token = jwt.encode({"alg": ALGORITHM, "kid": key.kid, "typ": "JWT"}, claims, key)
        with self._database.session() as session:
            session.add(
                IssuedToken(jti=jti, client_id=client_id, family=family, expires_at=now + lifetime)
            )
            session.commit()
        return IssuedAccess(token, int(lifetime.total_seconds()), jti)

    @property
    def cached_tokens(self) -> int:
        """How many verified tokens this process remembers."""
        return len(self._cache)

    def claims_of(self, token: str) -> dict[str, Any]:
        """The verified claims of an access token facade issued and has not revoked."""
        return dict(self._verified(token).claims)

    def grant_of(self, token: str) -> Grant:
        verified = self._verified(token)
        if verified.grant is None:
            verified.grant = self._grant(verified.claims)
        return verified.grant

    def _verified(self, token: str) -> _Verified:
        """The token's verification, from the cache while it lasts; its revocation is read
        from the database on every call, so revoking stays immediate."""
        key = hashlib.sha256(token.encode()).digest()
        now = self._clock.now().timestamp()
        verified = self._cache.get(key)
        if verified is None or verified.expires <= now:
            self._cache.pop(key, None)
            verified = self._verify(token, now)
            self._keep(key, verified, now)
        self._check_standing(verified)
        return verified

    def _verify(self, token: str, now: float) -> _Verified:
        """Signature, issuer, audience and expiry: the work done once per token."""
        try:
            decoded = jwt.decode(token, self._keys.verification_keys(), algorithms=[ALGORITHM])
        except (JoseError, ValueError):
            # Perhaps signed by a key made since the key set was last read (another process
            # rotated): read the keys again once before refusing.
            try:
                decoded = jwt.decode(
                    token, self._keys.verification_keys(fresh=True), algorithms=[ALGORITHM]
                )
            except (JoseError, ValueError):
                if token.count(".") != 2:
                    raise TokenRejected("The token is not a JWT.") from None
                raise TokenRejected(
                    "The token's signature does not verify with this server's keys: "
                    "it was not issued here, or was altered."
                ) from None
        claims = dict(decoded.claims)
        if claims.get("aud") != self.issuer:
            raise TokenRejected(
                f"The token's audience is {claims.get('aud')}; this server is {self.issuer}."
            )
        if claims.get("iss") != self.issuer:
            raise TokenRejected(
                f"The token's issuer is {claims.get('iss')}; this server is {self.issuer}."
            )
        if not isinstance(claims.get("exp"), int) or claims["exp"] <= now:
            expired = claims.get("exp")
            when = (
                datetime.fromtimestamp(expired, UTC).isoformat(timespec="seconds")
                if isinstance(expired, int)
                else "an unknown time"
            )
            raise TokenRejected(f"The token expired at {when}.")
        return _Verified(
            claims, claims["exp"], str(claims.get("jti", "")), str(claims.get("client_id"))
        )

    def _check_standing(self, verified: _Verified) -> None:
        """One indexed lookup per request: the token must be recorded, not revoked, and its
        client still active. Read each time rather than remembered, because revocation can
        come from anywhere: `facade client disable` or `user disable` in another process,
        another server worker, a replayed refresh token. Core SQL on a pooled connection."""
        with self._database.engine.connect() as connection:
            row = connection.execute(
                _STANDING, {"jti": verified.jti, "client": verified.client_id}
            ).first()
        if row is None or row[0]:
            raise TokenRejected("The token was revoked.")
        if row[1] != "active":
            raise TokenRejected("The token's client is disabled.")

    def _keep(self, key: bytes, verified: _Verified, now: float) -> None:
        # Safe beside another thread doing the same (list() copies the items in one step).
        if len(self._cache) >= VERIFIED_TOKENS_KEPT:
            for old, kept in list(self._cache.items()):
                if kept.expires <= now:
                    self._cache.pop(old, None)
            for old in list(self._cache)[: len(self._cache) - VERIFIED_TOKENS_KEPT + 1]:
                self._cache.pop(old, None)  # the oldest verified
        self._cache[key] = verified

    def _grant(self, claims: dict[str, Any]) -> Grant:
        kind = self._kind_of(claims)
        patient_login = kind == PATIENT_USER
        return Grant(
            client_id=str(claims["client_id"]),
            scopes=ScopeSet.parse(str(claims.get("scope", ""))),
            patient_id=claims.get("patient"),
            encounter_id=claims.get("encounter"),
            fhir_user=claims.get("fhirUser"),
            username=str(claims.get("sub")) if not claims.get("backend") else None,
            token_id=str(claims["jti"]),
            # A patient's token is never a backend service's, whatever it says.
            backend=bool(claims.get("backend")) and not patient_login,
            user_kind=kind,
        )

    def _kind_of(self, claims: dict[str, Any]) -> str:
        """Who the token was issued to. Tokens minted before the kind was recorded carry
        none: when such a token names a patient, its subject's account decides."""
        recorded = claims.get(USER_KIND_CLAIM)
        if isinstance(recorded, str):
            return recorded
        fhir_user = str(claims.get("fhirUser") or "")
        if fhir_user or claims.get("backend") or not claims.get("patient"):
            return user_kind(fhir_user)
        with self._database.session() as session:
            account = session.exec(
                select(UserAccount.fhir_user).where(
                    UserAccount.username == str(claims.get("sub", ""))
                )
            ).first()
        return user_kind(account or "")

    def issue_id_token(
        self, *, client_id: str, subject: str, fhir_user: str, nonce: str, auth_time: datetime
    ) -> str:
        now = self._clock.now()
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": subject,
            "aud": client_id,
            "iat": int(now.timestamp()),
            "exp": int((now + USER_TOKEN_LIFETIME).timestamp()),
            "auth_time": int(auth_time.timestamp()),
        }
        if fhir_user:
            claims["fhirUser"] = fhir_user
        if nonce:
            claims["nonce"] = nonce
        key = self._keys.current()
        return jwt.encode({"alg": ALGORITHM, "kid": key.kid, "typ": "JWT"}, claims, key)

    # -- refresh tokens ---------------------------------------------------------------------

    def issue_refresh_token(self, grant: RefreshGrant) -> str:
        token = secrets.token_urlsafe(32)
        now = self._clock.now()
        lifetime = OFFLINE_REFRESH_LIFETIME if grant.kind == "offline" else ONLINE_REFRESH_LIFETIME
        with self._database.session() as session:
            session.add(
                RefreshTokenRecord(
                    token_hash=token_hash(token),
                    family=grant.family,
                    client_id=grant.client_id,
                    username=grant.username,
                    scope=grant.scope,
                    patient_id=grant.patient_id,
                    encounter_id=grant.encounter_id,
                    kind=grant.kind,
                    expires_at=now + lifetime,
                    created_at=now,
                )
            )
            session.commit()
        return token

    def use_refresh_token(self, token: str, client_id: str) -> RefreshGrant | None:
        """The grant behind a refresh token, which is spent by this call; None if invalid.

        A token presented a second time is a stolen or replayed one: its whole family
        (every refresh and access token descended from the same authorization) is revoked."""
        now = self._clock.now()
        with self._database.session() as session:
            record = session.exec(
                select(RefreshTokenRecord).where(RefreshTokenRecord.token_hash == token_hash(token))
            ).first()
            if record is None or record.client_id != client_id:
                return None
            if record.revoked or _aware(record.expires_at) <= now:
                return None
            if record.rotated_at is not None:
                session.commit()
                self.revoke_family(record.family)
                return None
            record.rotated_at = now
            session.add(record)
            session.commit()
            return RefreshGrant(
                client_id=record.client_id,
                username=record.username,
                scope=record.scope,
                patient_id=record.patient_id,
                encounter_id=record.encounter_id,
                family=record.family,
                kind=record.kind,
            )

    # -- revocation and introspection -------------------------------------------------------

    def revoke_family(self, family: str) -> None:
        """Every refresh and access token descended from one authorization."""
        self._revoke_where("family", family)

    def revoke_client(self, client_id: str) -> None:
        """Every token of a client (it was disabled)."""
        self._revoke_where("client_id", client_id)

    def _revoke_where(self, column: str, value: str) -> None:
        with self._database.engine.begin() as connection:
            for table in (RefreshTokenRecord, IssuedToken):
                connection.execute(
                    update(table).where(getattr(table, column) == value).values(revoked=True)
                )

    def revoke(self, token: str, client_id: str) -> None:
        """RFC 7009: revoke an access or refresh token of this client (unknown ones: no-op)."""
        with self._database.session() as session:
            refresh = session.exec(
                select(RefreshTokenRecord).where(RefreshTokenRecord.token_hash == token_hash(token))
            ).first()
        if refresh is not None:
            if refresh.client_id == client_id:
                self.revoke_family(refresh.family)
            return
        try:
            claims = self.claims_of(token)
        except TokenRejected:
            return
        if claims.get("client_id") != client_id:
            return
        with self._database.session() as session:
            issued = session.exec(
                select(IssuedToken).where(IssuedToken.jti == claims["jti"])
            ).first()
            if issued is not None:
                issued.revoked = True
                session.add(issued)
                session.commit()

    def introspect(self, token: str) -> dict[str, Any]:
        """RFC 7662. Anything not active is exactly {"active": false}."""
        try:
            claims = self.claims_of(token)
        except TokenRejected:
            return {"active": False}
        answer: dict[str, Any] = {
            "active": True,
            "client_id": claims["client_id"],
            "scope": claims.get("scope", ""),
            "sub": claims.get("sub"),
            "exp": claims["exp"],
            "iat": claims.get("iat"),
            "iss": claims["iss"],
            "aud": claims["aud"],
            "token_type": "Bearer",
        }
        for key in ("patient", "encounter", "fhirUser"):
            if key in claims:
                answer[key] = claims[key]
        return answer


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
