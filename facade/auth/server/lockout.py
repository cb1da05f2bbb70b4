"""Failed logins counted per username, whether or not an account has that name, so that a
lockout looks, and takes, the same for a real account and a made-up one. A username is kept
only as the sha256 of its normalised form; nothing here logs one.

Each attempt is counted before its password or code is checked, under the row's write lock,
so parallel guesses cannot slip past the limit while the slow argon2 check runs.
"""

from __future__ import annotations

import hashlib
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, Connection, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from facade.clock import Clock
from facade.store.database import Database
from facade.store.models import LoginThrottle

MAX_FAILED_LOGINS = 5
LOCKOUT = timedelta(minutes=15)
#: Failures are forgotten after this long without another: five typos a week are no attack.
FAILURE_WINDOW = timedelta(minutes=15)
#: How often the table is swept of rows that no longer lock or count anything.
PRUNE_EVERY_SECONDS = 60.0


def normalise_username(username: str) -> str:
    """The form a username is throttled under: "Pat", " pat" and "ＰＡＴ" share one count."""
    return unicodedata.normalize("NFKC", username).strip().casefold()


def username_key(username: str) -> str:
    return hashlib.sha256(normalise_username(username).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Attempt:
    """One login attempt, counted: its number within the failure window, and whether the
    username was locked when it arrived."""

    key: str
    number: int
    locked: bool

    @property
    def refused(self) -> bool:
        """Refused whatever the secret: locked, or beyond the limit (a parallel guess)."""
        return self.locked or self.number > MAX_FAILED_LOGINS


class LoginLockout:
    def __init__(self, database: Database, clock: Clock):
        self._database = database
        self._clock = clock
        self._pruned_at: float | None = None

    def begin(self, username: str) -> Attempt:
        """Count an attempt at `username`, before its password or code is checked."""
        key = username_key(username)
        now = self._clock.now()
        self._prune(now)
        try:
            return self._count(key, now)
        except IntegrityError:
            # A parallel first attempt inserted the row between our UPDATE and INSERT
            # (PostgreSQL; SQLite serialises both): the row exists now, so count again.
            return self._count(key, now)

    def failed(self, attempt: Attempt) -> bool:
        """The attempt's secret was wrong, or it came locked or past the limit: lock at the
        limit (a lock already running is not extended). True when the username is locked."""
        if attempt.locked:
            return True
        if attempt.number < MAX_FAILED_LOGINS:
            return False
        now = self._clock.now()
        with self._database.engine.begin() as connection:
            connection.execute(
                update(LoginThrottle)
                .where(_row_of(attempt.key))
                .values(failures=0, locked_until=now + LOCKOUT, updated_at=now)
            )
        return True

    def succeeded(self, attempt: Attempt) -> None:
        """A complete login: its username starts afresh."""
        with self._database.engine.begin() as connection:
            connection.execute(delete(LoginThrottle).where(_row_of(attempt.key)))

    def _count(self, key: str, now: datetime) -> Attempt:
        with self._database.engine.begin() as connection:
            # A write first: it takes the row's lock (SQLite: the database's), so parallel
            # attempts are counted one after another and none is lost.
            claimed = connection.execute(
                update(LoginThrottle)
                .where(_row_of(key))
                .values(failures=col(LoginThrottle.failures))
            )
            if claimed.rowcount == 0:
                connection.execute(
                    insert(LoginThrottle).values(username_key=key, failures=1, updated_at=now)
                )
                return Attempt(key, 1, locked=False)
            return self._count_existing(connection, key, now)

    def _count_existing(self, connection: Connection, key: str, now: datetime) -> Attempt:
        row = connection.execute(
            select(
                col(LoginThrottle.failures),
                col(LoginThrottle.locked_until),
                col(LoginThrottle.updated_at),
            ).where(_row_of(key))
        ).one()
        failures, locked_until, updated_at = int(row[0]), _aware(row[1]), _aware(row[2])
        if locked_until is not None and locked_until > now:
            return Attempt(key, failures, locked=True)
        stale = updated_at is not None and updated_at <= now - FAILURE_WINDOW
        if locked_until is not None or stale:
            failures = 0  # the lock has run out, or the earlier failures are forgotten
        connection.execute(
            update(LoginThrottle)
            .where(_row_of(key))
            .values(failures=failures + 1, locked_until=None, updated_at=now)
        )
        return Attempt(key, failures + 1, locked=False)

    def _prune(self, now: datetime) -> None:
        moment = self._clock.monotonic()
        if self._pruned_at is not None and moment - self._pruned_at < PRUNE_EVERY_SECONDS:
            return
        self._pruned_at = moment
        # Made-up usernames leave a row each: sweep the ones that neither lock nor count.
        with self._database.engine.begin() as connection:
            connection.execute(
                delete(LoginThrottle).where(
                    col(LoginThrottle.updated_at) <= now - max(FAILURE_WINDOW, LOCKOUT),
                    or_(
                        col(LoginThrottle.locked_until).is_(None),
                        col(LoginThrottle.locked_until) <= now,
                    ),
                )
            )


def _row_of(key: str) -> ColumnElement[bool]:
    return col(LoginThrottle.username_key) == key


def _aware(moment: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; they were stored as UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)
