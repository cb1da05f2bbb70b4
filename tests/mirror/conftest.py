"""The mirror store on each of facade's databases (SQLite in tmp, and PostgreSQL), migrated,
with its own deployment key and a clock that moves only when told."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cryptography.fernet import Fernet

from facade.clock import FakeClock
from facade.mirror import MirrorStore
from facade.runtime import Runtime
from facade.store.database import Database
from tests.store.test_database import database_url, postgres_database  # noqa: F401  (fixtures)


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:  # noqa: F811  (database_url: a fixture)
    db = Database(database_url)
    db.migrate()
    yield db
    db.dispose()


@pytest.fixture
def key() -> bytes:
    """A deployment key, as FACADE_SECRET_KEY or the key file holds one."""
    return Fernet.generate_key()


@pytest.fixture
def store(database: Database, key: bytes, clock: FakeClock) -> MirrorStore:
    return MirrorStore(database, key, clock)


@pytest.fixture
def mirror(runtime: Runtime, clock: FakeClock) -> MirrorStore:
    """A mirror store in facade's own database (the sync suites', over the test's vendor)."""
    return MirrorStore(runtime.database, Fernet.generate_key(), clock)
