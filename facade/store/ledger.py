"""Counts every process of a deployment shares, in its database: the vendor calls made
(the quota and the burst pace) and each client's requests (its rate limit).

A count is a key (`vendor:NAME`, `client:ID`) with one row per event and when it happened.
Deciding whether one more event fits and recording it is one transaction holding the key's
row lock, so two processes asking at the same moment are answered one after the other and
never both take the last slot. Rows older than the longest window asked about are deleted as
the count goes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    func,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from facade.store.database import Database

_METADATA = MetaData()
_KEYS = Table(
    "ledger_key",
    _METADATA,
    Column("key", String(200), primary_key=True),
    Column("blocked_until", Float, nullable=True),
)
_ENTRIES = Table(
    "ledger_entry",
    _METADATA,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True),
    Column("key", String(200), nullable=False),
    Column("at", Float, nullable=False),
)


@dataclass(frozen=True)
class Tally:
    """Events of a key since a moment: how many, and when the oldest of them happened."""

    count: int
    oldest: float | None


class LockedKey:
    """One key, locked for the transaction it was opened in. Times are seconds since the
    epoch (every process compares them on the wall clock)."""

    def __init__(self, connection: Connection, key: str, blocked_until: float | None):
        self._connection = connection
        self.key = key
        self.blocked_until = blocked_until

    def since(self, moment: float, *, inclusive: bool = True) -> Tally:
        """Events at or after `moment` (after it, when not `inclusive`)."""
        count, oldest = self._connection.execute(_tally(self.key, moment, inclusive)).one()
        return Tally(int(count), oldest)

    def add(self, at: float) -> None:
        self._connection.execute(_ENTRIES.insert().values(key=self.key, at=at))

    def block_until(self, moment: float) -> None:
        """Nothing may happen before `moment` (a later block already recorded stays)."""
        if self.blocked_until is None or moment > self.blocked_until:
            self._connection.execute(
                update(_KEYS).where(_KEYS.c.key == self.key).values(blocked_until=moment)
            )
            self.blocked_until = moment

    def forget_before(self, moment: float) -> None:
        self._connection.execute(
            _ENTRIES.delete().where(_ENTRIES.c.key == self.key, _ENTRIES.c.at < moment)
        )


class Ledger:
    def __init__(self, database: Database):
        self._database = database
        dialect = database.engine.dialect.name
        self._insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        self._locks_rows = dialect == "postgresql"

    @contextmanager
    def locked(self, key: str) -> Iterator[LockedKey]:
        """The key, locked until the block ends (and its changes committed then)."""
        with self._database.engine.begin() as connection:
            connection.execute(self._insert(_KEYS).values(key=key).on_conflict_do_nothing())
            query = select(_KEYS.c.blocked_until).where(_KEYS.c.key == key)
            if self._locks_rows:
                query = query.with_for_update()
            else:  # SQLite locks the whole database for the first write of a transaction
                connection.execute(update(_KEYS).where(_KEYS.c.key == key).values(key=key))
            blocked_until = connection.execute(query).scalar_one()
            yield LockedKey(connection, key, blocked_until)

    def read(self, key: str, since: float, *, inclusive: bool = True) -> tuple[Tally, float | None]:
        """The key's events since `since` and its block, without locking (for reports)."""
        with self._database.engine.connect() as connection:
            count, oldest = connection.execute(_tally(key, since, inclusive)).one()
            blocked = connection.execute(
                select(_KEYS.c.blocked_until).where(_KEYS.c.key == key)
            ).scalar_one_or_none()
        return Tally(int(count), oldest), blocked


def _tally(key: str, moment: float, inclusive: bool) -> Any:
    after = _ENTRIES.c.at >= moment if inclusive else _ENTRIES.c.at > moment
    return select(func.count(), func.min(_ENTRIES.c.at)).where(_ENTRIES.c.key == key, after)
