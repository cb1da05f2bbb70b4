"""facade's own database: migrations and the encrypted vendor connection store.

Every database case runs on SQLite (a file in tmp) and on PostgreSQL. The PostgreSQL cases
need a server (FACADE_TEST_POSTGRES_URL, default: trust auth on 127.0.0.1:5432); when it
cannot be reached they fail, because CI must test both.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from cryptography.fernet import Fernet
from sqlalchemy import MetaData, create_engine, inspect, text
from sqlalchemy.engine import make_url
from sqlmodel import SQLModel

from facade.mirror.models import MirrorDelivery, MirrorHint, MirrorRecord, MirrorWatermark
from facade.store.connections import ConnectionStore, VendorCredentials
from facade.store.database import MIGRATIONS_DIR, Database, temporary_database
from facade.store.secrets import (
    KEY_FILE_NAME,
    SecretBox,
    SecretDecryptionError,
    deployment_key,
    load_or_create_key,
)

POSTGRES_SERVER_URL = os.environ.get(
    "FACADE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)

NOW = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A uniquely named database on the PostgreSQL server, dropped when the session ends."""
    with ExitStack() as stack:
        try:
            url = stack.enter_context(temporary_database(POSTGRES_SERVER_URL, "facade_test"))
        except Exception as exc:  # any failure to reach the server must fail, not skip
            pytest.fail(f"PostgreSQL at {make_url(POSTGRES_SERVER_URL)} is not usable: {exc}")
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'facade.db'}"
        return
    url: str = request.getfixturevalue("postgres_database")
    yield url
    # The PostgreSQL database lives for the session: leave it empty for the next test.
    engine = create_engine(url)
    tables = MetaData()
    tables.reflect(engine)
    tables.drop_all(engine)
    engine.dispose()


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    db = Database(database_url)
    db.migrate()
    yield db
    db.dispose()


@pytest.fixture
def box() -> SecretBox:
    return SecretBox(Fernet.generate_key())


@pytest.fixture
def store(database: Database, box: SecretBox) -> ConnectionStore:
    return ConnectionStore(database, box, clock=lambda: NOW)


@pytest.fixture
def credentials() -> VendorCredentials:
    return VendorCredentials(
        base_url="https://app.drchrono.com",
        client_id="client-abc",
        client_secret="client-secret-plaintext-1",
        access_token="access-token-plaintext-1",
        refresh_token="refresh-token-plaintext-1",
        expires_at=NOW + timedelta(hours=48),
        scope="user:read patients:read",
        login_secret="login-secret-plaintext-1",
    )


def raw_connection_rows(database: Database) -> list[dict[str, object]]:
    with database.engine.connect() as connection:
        result = connection.execute(text("SELECT * FROM upstream_connection"))
        return [dict(row._mapping) for row in result]


# -- migrations ----------------------------------------------------------------------------


def test_migrate_creates_the_schema(database_url: str) -> None:
    database = Database(database_url)
    try:
        assert "upstream_connection" not in inspect(database.engine).get_table_names()
        database.migrate()
        inspector = inspect(database.engine)
        assert {"upstream_connection", "alembic_version"} <= set(inspector.get_table_names())
        columns = {c["name"] for c in inspector.get_columns("upstream_connection")}
        assert columns == {
            "id",
            "vendor",
            "base_url",
            "client_id",
            "client_secret_enc",
            "access_token_enc",
            "refresh_token_enc",
            "expires_at",
            "scope",
            "login_secret_enc",
            "created_at",
            "updated_at",
        }
        vendor_index = [
            index
            for index in inspector.get_indexes("upstream_connection")
            if index["column_names"] == ["vendor"]
        ]
        assert vendor_index and vendor_index[0]["unique"]
    finally:
        database.dispose()


MIRROR_TABLES = (MirrorRecord, MirrorWatermark, MirrorDelivery, MirrorHint)


def test_migrate_creates_the_mirror_tables_as_their_models_declare(database: Database) -> None:
    inspector = inspect(database.engine)
    for model in MIRROR_TABLES:
        table = SQLModel.metadata.tables[str(model.__tablename__)]
        columns = {c["name"]: c for c in inspector.get_columns(table.name)}
        assert set(columns) == set(table.columns.keys()), table.name
        for column in table.columns:
            assert columns[column.name]["nullable"] == column.nullable, (table.name, column.name)
    record_columns = {c["name"] for c in inspector.get_columns("mirror_record")}
    assert not record_columns & {"body", "name", "birth_date"}  # only the sealed body

    def unique_keys(table: str) -> list[list[str]]:
        constraints = [c["column_names"] for c in inspector.get_unique_constraints(table)]
        indexes = [i["column_names"] for i in inspector.get_indexes(table) if i["unique"]]
        return constraints + indexes

    def indexes(table: str) -> list[list[str]]:
        return [list(i["column_names"]) for i in inspector.get_indexes(table)]

    assert ["connection", "endpoint", "vendor_id"] in unique_keys("mirror_record")
    assert ["connection", "endpoint", "patient_id"] in indexes("mirror_record")
    assert ["connection", "endpoint", "id"] in indexes("mirror_record")
    assert ["connection", "endpoint", "params_key"] in unique_keys("mirror_watermark")
    assert ["connection", "delivery_id"] in unique_keys("mirror_delivery")
    assert ["connection", "endpoint", "vendor_id"] in unique_keys("mirror_hint")


def test_the_mirror_migration_downgrades_and_upgrades_cleanly(database: Database) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    mirror = {str(model.__tablename__) for model in MIRROR_TABLES}

    def run(step: Callable[[Config, str], None], revision: str) -> set[str]:
        with database.engine.begin() as connection:
            config.attributes["connection"] = connection
            step(config, revision)
        return set(inspect(database.engine).get_table_names())

    assert mirror <= run(command.upgrade, "head")
    after_downgrade = run(command.downgrade, "0006")
    assert not mirror & after_downgrade
    assert "upstream_connection" in after_downgrade
    with database.engine.connect() as connection:
        version = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    assert version == "0006"
    assert mirror <= run(command.upgrade, "head")


def test_migrate_is_idempotent(database: Database) -> None:
    database.migrate()
    database.migrate()
    with database.engine.connect() as connection:
        versions = connection.execute(text("SELECT version_num FROM alembic_version")).all()
    head = ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()
    assert [v for (v,) in versions] == [head]


def test_migrate_keeps_existing_rows(database: Database) -> None:
    with database.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO upstream_connection (vendor, base_url, client_id,"
                " client_secret_enc, access_token_enc, refresh_token_enc, expires_at, scope,"
                " created_at, updated_at) VALUES ('drchrono', 'https://x', 'c', 's', 'a', 'r',"
                " :t, '', :t, :t)"
            ),
            {"t": datetime(2026, 6, 1, 12, 0, 0)},
        )
    database.migrate()
    assert [row["vendor"] for row in raw_connection_rows(database)] == ["drchrono"]


# -- the connection store ------------------------------------------------------------------


def test_an_unknown_vendor_has_no_connection(store: ConnectionStore) -> None:
    assert store.load("drchrono") is None


def test_saved_credentials_load_back_unchanged(
    store: ConnectionStore, credentials: VendorCredentials
) -> None:
    store.save("drchrono", credentials)
    loaded = store.load("drchrono")
    assert loaded == credentials
    assert loaded is not None and loaded.expires_at.tzinfo is not None


def test_an_expiry_in_another_timezone_is_stored_as_the_same_instant(
    store: ConnectionStore, credentials: VendorCredentials
) -> None:
    from zoneinfo import ZoneInfo

    local = credentials.expires_at.astimezone(ZoneInfo("America/Chicago"))
    store.save("drchrono", replace(credentials, expires_at=local))
    loaded = store.load("drchrono")
    assert loaded is not None and loaded.expires_at == credentials.expires_at


def test_secrets_are_encrypted_at_rest(
    store: ConnectionStore, database: Database, box: SecretBox, credentials: VendorCredentials
) -> None:
    store.save("drchrono", credentials)
    [row] = raw_connection_rows(database)
    for column, plaintext in (
        ("client_secret_enc", credentials.client_secret),
        ("access_token_enc", credentials.access_token),
        ("refresh_token_enc", credentials.refresh_token),
        ("login_secret_enc", credentials.login_secret),
    ):
        stored = str(row[column])
        assert plaintext not in stored
        assert box.decrypt(stored) == plaintext
    # What is not secret stays readable, for an operator looking at the table.
    assert (row["base_url"], row["client_id"]) == (credentials.base_url, credentials.client_id)


def test_another_key_cannot_read_the_secrets(
    store: ConnectionStore, database: Database, credentials: VendorCredentials
) -> None:
    store.save("drchrono", credentials)
    stranger = ConnectionStore(database, SecretBox(Fernet.generate_key()))
    with pytest.raises(SecretDecryptionError) as raised:
        stranger.load("drchrono")
    assert credentials.client_secret not in str(raised.value)


def test_saving_again_replaces_the_connection(
    store: ConnectionStore, database: Database, credentials: VendorCredentials
) -> None:
    store.save("drchrono", credentials)
    rotated = replace(
        credentials,
        access_token="access-token-plaintext-2",
        refresh_token="refresh-token-plaintext-2",
        expires_at=NOW + timedelta(hours=96),
    )
    store.save("drchrono", rotated)
    assert len(raw_connection_rows(database)) == 1
    assert store.load("drchrono") == rotated


def test_each_vendor_has_its_own_connection(
    store: ConnectionStore, credentials: VendorCredentials
) -> None:
    other = replace(credentials, base_url="https://other.example", client_id="other")
    store.save("drchrono", credentials)
    store.save("carecloud", other)
    assert store.load("drchrono") == credentials
    assert store.load("carecloud") == other


def test_a_deleted_connection_is_gone(
    store: ConnectionStore, credentials: VendorCredentials
) -> None:
    store.save("drchrono", credentials)
    store.delete("drchrono")
    assert store.load("drchrono") is None


# -- key material and repr -----------------------------------------------------------------


def test_the_key_file_is_created_owner_only_and_reused(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    key = load_or_create_key(data_dir)
    path = data_dir / KEY_FILE_NAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_key(data_dir) == key
    # A box made from settings without FACADE_SECRET_KEY uses that same file.
    token = SecretBox.from_settings("", data_dir).encrypt("secret")
    assert SecretBox(key).decrypt(token) == "secret"


def test_a_configured_secret_key_wins_over_the_key_file(tmp_path: Path) -> None:
    configured = Fernet.generate_key()
    token = SecretBox.from_settings(configured.decode(), tmp_path).encrypt("secret")
    assert SecretBox(configured).decrypt(token) == "secret"
    assert not (tmp_path / KEY_FILE_NAME).exists()


def test_the_deployment_key_is_the_one_the_secret_box_uses(tmp_path: Path) -> None:
    """What the mirror and the cursors derive their keys from: the configured key, else the
    key file, which it makes on first use like the secret box."""
    data_dir = tmp_path / "data"
    made = deployment_key("", data_dir)
    assert made == (data_dir / KEY_FILE_NAME).read_bytes().strip()
    assert deployment_key("", data_dir) == made
    token = SecretBox.from_settings("", data_dir).encrypt("secret")
    assert SecretBox(made).decrypt(token) == "secret"
    configured = Fernet.generate_key()
    assert deployment_key(configured.decode(), data_dir) == configured


def test_repr_hides_secrets(credentials: VendorCredentials) -> None:
    shown = repr(credentials) + str(credentials)
    assert credentials.client_id in shown
    for secret in (credentials.client_secret, credentials.access_token, credentials.refresh_token):
        assert secret not in shown
    key = Fernet.generate_key()
    assert key.decode() not in repr(SecretBox(key))
