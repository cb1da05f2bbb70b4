"""Run a test module on both of facade's databases: import `settings` from here and every
test in the module runs on SQLite (a file in the data dir) and on PostgreSQL
(FACADE_TEST_POSTGRES_URL; unreachable fails, as in tests/store/test_database.py)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager

import pytest
from sqlalchemy import MetaData, create_engine

from facade.settings import Settings
from facade.store.database import temporary_database
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


def fresh_postgres_database(prefix: str) -> AbstractContextManager[str]:
    """A new, empty database on the test PostgreSQL server for processes a test starts,
    dropped (with whatever the processes made in it) when the block ends."""
    return temporary_database(POSTGRES_SERVER_URL, prefix)
