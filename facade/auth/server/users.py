"""The people who log in to the authorization server: patients and practitioners.

Passwords are argon2 hashes; TOTP secrets are encrypted in the secret box. A login costs one
argon2 verification and is counted by the lockout whether or not the username exists, so an
unknown name answers as, and as slowly as, a wrong password. Nothing here logs a password,
a code or a username.

UserAccount.failed_logins and .locked_until are no longer written: the lockout lives in the
login_throttle table (lockout.py), which also holds names that have no account.
"""

from __future__ import annotations

import enum
import secrets
from dataclasses import dataclass
from functools import cached_property

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlmodel import select

from facade.auth.passwords import check_password
from facade.auth.server.lockout import Attempt, LoginLockout
from facade.clock import Clock
from facade.store.database import Database
from facade.store.models import UserAccount
from facade.store.secrets import SecretBox


class LoginOutcome(enum.Enum):
    OK = "ok"
    NEEDS_TOTP = "needs_totp"
    INVALID = "invalid"
    LOCKED = "locked"


@dataclass(frozen=True)
class User:
    username: str
    fhir_user: str
    has_totp: bool

    @property
    def is_patient(self) -> bool:
        return self.fhir_user.startswith("Patient/")

    @property
    def patient_id(self) -> str:
        return self.fhir_user.removeprefix("Patient/") if self.is_patient else ""


class UserRegistry:
    def __init__(
        self,
        database: Database,
        box: SecretBox,
        clock: Clock,
        *,
        hasher: PasswordHasher | None = None,
    ):
        self._database = database
        self._box = box
        self._clock = clock
        self._hasher = hasher or PasswordHasher()
        self.lockout = LoginLockout(database, clock)

    @cached_property
    def _dummy_hash(self) -> str:
        """Verified for unknown usernames: made by the same hasher, with the same cost, as
        every account's hash, so both take the same time."""
        return self._hasher.hash(secrets.token_urlsafe(16))

    def create(self, username: str, password: str, fhir_user: str, *, totp: bool = False) -> str:
        """Add a user; returns the TOTP secret (to enrol an authenticator) or "".
        Raises WeakPassword when the password policy refuses the password."""
        if not fhir_user.startswith(("Patient/", "Practitioner/")):
            raise ValueError("fhir_user must be Patient/<id> or Practitioner/<id>")
        check_password(password, username)
        secret = pyotp.random_base32() if totp else ""
        now = self._clock.now()
        with self._database.session() as session:
            session.add(
                UserAccount(
                    username=username,
                    password_hash=self._hasher.hash(password),
                    fhir_user=fhir_user,
                    totp_secret_enc=self._box.encrypt(secret) if secret else "",
                    created_at=now,
                    updated_at=now,
                )
            )
            session.commit()
        return secret

    def find(self, username: str) -> User | None:
        row = self._row(username)
        return _user(row) if row is not None else None

    def check_password(self, username: str, password: str) -> LoginOutcome:
        """Exactly one argon2 verification on every path: known or unknown, locked or not."""
        attempt = self.lockout.begin(username)
        row = self._row(username)
        verified = self._verify(row.password_hash if row else self._dummy_hash, password)
        if attempt.refused or row is None or not verified:
            return self._failed(attempt)
        self._rehash_if_stale(row, password)
        if row.totp_secret_enc:
            # Not a complete login yet: the count stands until the code is right too, so a
            # known password cannot be used to try codes without limit.
            return LoginOutcome.NEEDS_TOTP
        self.lockout.succeeded(attempt)
        return LoginOutcome.OK

    def check_totp(self, username: str, code: str) -> LoginOutcome:
        """The second factor, counted on the same lockout as the password."""
        attempt = self.lockout.begin(username)
        row = self._row(username)
        if attempt.refused or row is None or not row.totp_secret_enc:
            return self._failed(attempt)
        totp = pyotp.TOTP(self._box.decrypt(row.totp_secret_enc))
        if not totp.verify(code.strip(), for_time=self._clock.now(), valid_window=1):
            return self._failed(attempt)
        self.lockout.succeeded(attempt)
        return LoginOutcome.OK

    def _failed(self, attempt: Attempt) -> LoginOutcome:
        """Refused, locked, or wrong: the lockout decides between 401 and 403."""
        return LoginOutcome.LOCKED if self.lockout.failed(attempt) else LoginOutcome.INVALID

    def _row(self, username: str) -> UserAccount | None:
        """The account that may log in: a disabled one answers as an unknown name does."""
        with self._database.session() as session:
            return session.exec(
                select(UserAccount)
                .where(UserAccount.username == username)
                .where(UserAccount.disabled_at.is_(None))  # type: ignore[union-attr]
            ).first()

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return bool(self._hasher.verify(password_hash, password))
        except (VerificationError, InvalidHashError):
            return False

    def _rehash_if_stale(self, row: UserAccount, password: str) -> None:
        """A hash made with older argon2 parameters is replaced at the next good login, so
        every account keeps costing what an unknown name costs."""
        if not self._hasher.check_needs_rehash(row.password_hash):
            return
        with self._database.session() as session:
            fresh = session.get(UserAccount, row.id)
            if fresh is None:
                return
            fresh.password_hash = self._hasher.hash(password)
            fresh.updated_at = self._clock.now()
            session.add(fresh)
            session.commit()


def _user(row: UserAccount) -> User:
    return User(row.username, row.fhir_user, bool(row.totp_secret_enc))
