"""The mirror store on each of facade's databases (SQLite in tmp, and PostgreSQL), migrated,
with its own deployment key and a clock that moves only when told."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from facade.clock import FakeClock
from facade.mirror import MirrorStore
from facade.store.database import Database
from tests.store.test_database import (  # noqa: F401  (fixtures)
    database,
    database_url,
    postgres_database,
)


@pytest.fixture
def key() -> bytes:
    """A deployment key, as FACADE_SECRET_KEY or the key file holds one."""
    return Fernet.generate_key()


@pytest.fixture
def store(database: Database, key: bytes, clock: FakeClock) -> MirrorStore:
    return MirrorStore(database, key, clock)
