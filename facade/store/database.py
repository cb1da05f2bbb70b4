"""The database handle: an engine for a URL, migrated to the newest schema on open.

A SQLite database is owner-only: its file is made 0600 before SQLite opens it (SQLite gives
the -wal, -shm and -journal files the database file's mode) and every new connection checks
the companions again, so no umask or older version leaves them readable by others.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, event, make_url, text
from sqlmodel import Session, create_engine

from facade.store.private_files import create_private, private_dir, sqlite_files, tighten

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
#: The PostgreSQL advisory lock migrations hold (any constant no other lock of facade uses).
_MIGRATION_LOCK = 0x66616361_6465  # "facade"


class Database:
    def __init__(self, url: str):
        self.url = url
        self.sqlite_path = sqlite_file(url)
        if self.sqlite_path is not None:
            if not self.sqlite_path.parent.exists():
                private_dir(self.sqlite_path.parent)
            create_private(self.sqlite_path)
            for path in sqlite_files(self.sqlite_path):
                tighten(path)
        connect_args = {"check_same_thread": False} if url.startswith("sqlite") else {}
        self.engine: Engine = create_engine(url, connect_args=connect_args, pool_pre_ping=True)
        if url.startswith("sqlite"):
            event.listen(self.engine, "connect", self._on_sqlite_connect)

    def migrate(self) -> None:
        """Bring the schema to the newest migration (idempotent)."""
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        # configparser interpolates "%": a URL-encoded option (a tenant's search path) has some.
        config.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))
        with self.engine.begin() as connection:
            if self.shared:
                # Replicas starting together migrate one after the other, not into each other.
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK}
                )
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    @property
    def shared(self) -> bool:
        """Whether more than one process may use this database at once (PostgreSQL): then
        counts and locks that a single process keeps in memory live in the database."""
        return self.engine.dialect.name == "postgresql"

    @contextmanager
    def session(self) -> Iterator[Session]:
        with Session(self.engine, expire_on_commit=False) as session:
            yield session

    def dispose(self) -> None:
        self.engine.dispose()

    def _on_sqlite_connect(self, dbapi_connection: object, _record: object) -> None:
        _sqlite_pragmas(dbapi_connection)
        if self.sqlite_path is not None:
            # Opening in WAL mode has made the -wal and -shm files by now; a file someone
            # replaced or an older version left loose is tightened before any row is written.
            for path in sqlite_files(self.sqlite_path):
                tighten(path)


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL, or None (another engine, or an in-memory database)."""
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite"):
        return None
    name = parsed.database or ""
    if not name or name == ":memory:" or name.startswith("file:") or parsed.query.get("uri"):
        return None
    return Path(name)


def _sqlite_pragmas(dbapi_connection: object) -> None:
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA journal_mode=WAL")
    # With WAL, NORMAL is durable across application crashes and avoids an fsync per commit.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


@contextmanager
def temporary_database(server_url: str, prefix: str) -> Iterator[str]:
    """A new, empty PostgreSQL database on the server `server_url` names, dropped (with
    whatever was made in it) when the block ends: for tests and benchmarks that start
    processes of their own on it. Yields its URL."""
    server = make_url(server_url)
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
