"""Run a test module on both of facade's databases: import `settings` from here and every
test in the module runs on SQLite (a file in the data dir) and on PostgreSQL
(FACADE_TEST_POSTGRES_URL; unreachable fails, as in tests/store/test_database.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import MetaData, create_engine, make_url, text

from facade.settings import Settings
from tests.store.test_database import (  # noqa: F401  (a fixture)
    POSTGRES_SERVER_URL,
    postgres_database,
)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def settings(request: pytest.FixtureRequest, settings: Settings) -> Iterator[Settings]:
    """The suite's settings, on SQLite (in the data dir) or on a PostgreSQL database."""
    if request.param == "sqlite":
        yield settings
        return
    url: str = request.getfixturevalue("postgres_database")
    yield settings.with_overrides(database_url=url)
    # The PostgreSQL database lives for the session: leave it empty for the next test.
    engine = create_engine(url)
    tables = MetaData()
    tables.reflect(engine)
    tables.drop_all(engine)
    engine.dispose()


@contextmanager
def fresh_postgres_database(prefix: str) -> Iterator[str]:
    """A new, empty database on the PostgreSQL server for processes a test starts, dropped
    (with whatever the processes made in it) when the block ends."""
    server = make_url(POSTGRES_SERVER_URL)
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
