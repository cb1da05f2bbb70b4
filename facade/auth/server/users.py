"""The people who log in to the authorization server: patients and practitioners.

Passwords are argon2 hashes; TOTP secrets are encrypted in the secret box. Five failed
attempts lock an account for fifteen minutes. Nothing here logs a password or a code.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlmodel import select

from facade.clock import Clock
from facade.store.database import Database
from facade.store.models import UserAccount
from facade.store.secrets import SecretBox

MAX_FAILED_LOGINS = 5
LOCKOUT = timedelta(minutes=15)

_hasher = PasswordHasher()
#: Verifying against this keeps unknown usernames as slow as wrong passwords.
_DUMMY_HASH = _hasher.hash("facade-no-such-user")


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
    def __init__(self, database: Database, box: SecretBox, clock: Clock):
        self._database = database
        self._box = box
        self._clock = clock

    def create(self, username: str, password: str, fhir_user: str, *, totp: bool = False) -> str:
        """Add a user; returns the TOTP secret (to enrol an authenticator) or ""."""
        if not fhir_user.startswith(("Patient/", "Practitioner/")):
            raise ValueError("fhir_user must be Patient/<id> or Practitioner/<id>")
        secret = pyotp.random_base32() if totp else ""
        now = self._clock.now()
        with self._database.session() as session:
            session.add(
                UserAccount(
                    username=username,
                    password_hash=_hasher.hash(password),
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
        row = self._row(username)
        if row is None:
            _verify(_DUMMY_HASH, password)
            return LoginOutcome.INVALID
        if self._locked(row):
            return LoginOutcome.LOCKED
        if not _verify(row.password_hash, password):
            return self._failed(row)
        if row.totp_secret_enc:
            return LoginOutcome.NEEDS_TOTP
        self._succeeded(row)
        return LoginOutcome.OK

    def check_totp(self, username: str, code: str) -> LoginOutcome:
        row = self._row(username)
        if row is None or not row.totp_secret_enc:
            return LoginOutcome.INVALID
        if self._locked(row):
            return LoginOutcome.LOCKED
        totp = pyotp.TOTP(self._box.decrypt(row.totp_secret_enc))
        if not totp.verify(code.strip(), for_time=self._clock.now(), valid_window=1):
            return self._failed(row)
        self._succeeded(row)
        return LoginOutcome.OK

    def _row(self, username: str) -> UserAccount | None:
        with self._database.session() as session:
            return session.exec(select(UserAccount).where(UserAccount.username == username)).first()

    def _locked(self, row: UserAccount) -> bool:
        return row.locked_until is not None and _aware(row.locked_until) > self._clock.now()

    def _failed(self, row: UserAccount) -> LoginOutcome:
        now = self._clock.now()
        with self._database.session() as session:
            fresh = session.get(UserAccount, row.id)
            assert fresh is not None
            fresh.failed_logins += 1
            outcome = LoginOutcome.INVALID
            if fresh.failed_logins >= MAX_FAILED_LOGINS:
                fresh.locked_until = now + LOCKOUT
                fresh.failed_logins = 0
                outcome = LoginOutcome.LOCKED
            fresh.updated_at = now
            session.add(fresh)
            session.commit()
        return outcome

    def _succeeded(self, row: UserAccount) -> None:
        with self._database.session() as session:
            fresh = session.get(UserAccount, row.id)
            assert fresh is not None
            fresh.failed_logins = 0
            fresh.locked_until = None
            fresh.updated_at = self._clock.now()
            session.add(fresh)
            session.commit()


def _verify(password_hash: str, password: str) -> bool:
    try:
        return bool(_hasher.verify(password_hash, password))
    except (VerificationError, InvalidHashError):
        return False


def _user(row: UserAccount) -> User:
    return User(row.username, row.fhir_user, bool(row.totp_secret_enc))


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
