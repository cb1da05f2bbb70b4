"""`facade connect carecloud`: secrets read from files (never echoed), one login to prove
them, and only then stored, encrypted; a refused login stores nothing and says why plainly.

The connect coroutine runs against the CareCloud sandbox through an ASGI transport; what it
stored is read back from the database row and the data directory as they are on disk.
"""

from __future__ import annotations

import argparse
import copy
import io
import shlex
import sqlite3
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from facade.clock import FakeClock
from facade.settings import Settings
from facade.store.connections import VendorCredentials
from facade.store.database import Database
from facade.store.secrets import SecretBox
from facade.upstream.budget import UpstreamBudget
from facade.upstream.cache import ResponseCache
from facade.upstream.carecloud.client import CareCloudClient, build_client
from facade.upstream.carecloud.connection import (
    add_connect_arguments,
    connect,
    describe_connection,
    log_in,
    log_in_at,
    stored_keeper,
)
from facade.upstream.carecloud.credentials import (
    OverVendorKeeper,
)
from facade.upstream.carecloud.practice_context import readiness_probe
from facade.upstream.carecloud.sandbox.app import create_sandbox_app
from facade.upstream.carecloud.sandbox.generator import generate
from facade.upstream.carecloud.sandbox.serve import connect_hint, write_credentials
from facade.upstream.carecloud.sandbox.state import SandboxState
from facade.upstream.carecloud.session import CareCloudSession
from tests.upstream.carecloud.client_harness import BASE_URL, SEED, START, WRONG_SECRET

#: A small practice; its API user's password and TOTP secret derive from the seed.
PRACTICE = generate(5, SEED)
_USER = SandboxState.create(PRACTICE, seed=SEED).default_user
USERNAME, PASSWORD, TOTP_SECRET = _USER.username, _USER.password, _USER.totp_secret
BUSINESS_ENTITY_ID = str(PRACTICE.business_entity["id"])


@dataclass
class Vendor:
    """The sandbox and its clock, with the few views these tests read."""

    state: SandboxState
    clock: FakeClock

    def app(self) -> object:
        return create_sandbox_app(self.state)

    @property
    def sessions(self) -> dict[str, object]:
        return dict(self.state.sessions)

    @property
    def refresh_tokens(self) -> dict[str, object]:
        return dict(self.state.refresh_grants)

    @property
    def seen(self) -> list[object]:
        return list(self.state.request_log)

    def logins(self) -> list[object]:
        return [e for e in self.state.request_log if e.endpoint == "authenticate"]

    def lock(self) -> None:
        self.state.locked_until[USERNAME] = self.clock.now() + timedelta(minutes=15)


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str


@pytest.fixture
def vendor() -> Vendor:
    clock = FakeClock(START)
    return Vendor(SandboxState.create(copy.deepcopy(PRACTICE), seed=SEED, clock=clock.now), clock)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


def secret_file(tmp_path: Path, name: str, value: str) -> Path:
    path = tmp_path / name
    path.write_text(value + "\n")
    path.chmod(0o600)
    return path


async def run_connect(
    vendor: Vendor, settings: Settings, tmp_path: Path, *extra: str, **files: str
) -> Run:
    parser = argparse.ArgumentParser()
    add_connect_arguments(parser)
    given = {"password": PASSWORD, "totp-secret": TOTP_SECRET, **files}
    argv = ["--base-url", BASE_URL, "--username", USERNAME, *extra]
    for name, value in given.items():
        if value:
            argv += [f"--{name}-file", str(secret_file(tmp_path, name, value))]
    stdout, stderr = io.StringIO(), io.StringIO()
    code = await connect(
        parser.parse_args(argv),
        settings,
        transport=httpx.ASGITransport(app=vendor.app()),
        clock=vendor.clock,
        stdin=io.StringIO(""),
        stdout=stdout,
        stderr=stderr,
    )
    return Run(code, stdout.getvalue(), stderr.getvalue())


def connection_rows(settings: Settings) -> list[tuple[object, ...]]:
    path = settings.data_dir / "facade.db"
    if not path.exists():
        return []
    with sqlite3.connect(path) as db:
        tables = {row[0] for row in db.execute("select name from sqlite_master")}
        if "upstream_connection" not in tables:
            return []
        return list(db.execute("select * from upstream_connection"))


async def test_connect_logs_in_once_and_stores_every_secret_encrypted(
    vendor: Vendor, settings: Settings, tmp_path: Path
) -> None:
    run = await run_connect(vendor, settings, tmp_path)
    assert run.code == 0, run.stderr
    assert f"now serves {BASE_URL}" in run.stdout
    assert [s.status for s in vendor.logins()] == [200]
    session_token = next(iter(vendor.sessions))
    refresh_token = next(iter(vendor.refresh_tokens))

    (row,) = connection_rows(settings)
    on_disk = repr(row)
    for secret in (PASSWORD, TOTP_SECRET, session_token, refresh_token):
        assert secret not in on_disk
    assert USERNAME in repr(row)  # the username is no secret: an operator may read it
    assert not list(settings.data_dir.glob("*totp*"))  # the TOTP secret lives in the row only
    for secret in (PASSWORD, TOTP_SECRET, session_token, refresh_token):
        assert secret not in run.stdout + run.stderr


async def test_a_stored_connection_serves_and_keeps_its_renewals_encrypted(
    vendor: Vendor, settings: Settings, tmp_path: Path
) -> None:
    assert (await run_connect(vendor, settings, tmp_path)).code == 0
    database = Database(settings.resolved_database_url)
    try:
        await _serve_from_the_store(vendor, settings, database)
    finally:
        database.dispose()


async def _serve_from_the_store(vendor: Vendor, settings: Settings, database: Database) -> None:
    box = SecretBox.from_settings(settings.secret_key, settings.data_dir)
    keeper = stored_keeper(database, box)
    stored = keeper.load()
    assert (stored.username, stored.password, stored.totp_secret) == (
        USERNAME,
        PASSWORD,
        TOTP_SECRET.rstrip("="),  # padding dropped, as authenticator apps show secrets
    )
    assert stored.session_token in vendor.sessions
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=vendor.app())) as http:
        clock = vendor.clock
        client = CareCloudClient(
            http,
            CareCloudSession(http, keeper, clock),
            UpstreamBudget(clock, 100, None),
            ResponseCache(clock),
            clock,
        )
        clock.advance(13 * 3600)  # the stored session and refresh token are long gone
        await client.get_path("/authorization", reason="test")
    renewed = keeper.load()
    assert renewed.session_token != stored.session_token
    assert renewed.session_token in vendor.sessions
    (row,) = connection_rows(settings)
    assert renewed.session_token not in repr(row)


@pytest.mark.parametrize(
    ("files", "said"),
    [
        ({"totp-secret": WRONG_SECRET}, "refused the one-time code"),
        ({"password": "not the password"}, "refused the username or password"),
    ],
)
async def test_a_refused_login_is_said_plainly_and_stores_nothing(
    vendor: Vendor,
    settings: Settings,
    tmp_path: Path,
    files: dict[str, str],
    said: str,
) -> None:
    run = await run_connect(vendor, settings, tmp_path, **files)
    assert run.code == 1
    assert said in run.stderr
    assert "nothing was stored" in run.stderr
    assert connection_rows(settings) == []
    for secret in (PASSWORD, TOTP_SECRET, WRONG_SECRET, "not the password"):
        assert secret not in run.stdout + run.stderr


async def test_a_locked_account_is_said_plainly(
    vendor: Vendor, settings: Settings, tmp_path: Path
) -> None:
    vendor.lock()
    run = await run_connect(vendor, settings, tmp_path)
    assert run.code == 1
    assert "locked the account" in run.stderr
    assert connection_rows(settings) == []


async def test_a_secret_that_is_not_base32_is_refused_before_any_login(
    vendor: Vendor, settings: Settings, tmp_path: Path
) -> None:
    run = await run_connect(vendor, settings, tmp_path, **{"totp-secret": "not base32 at all!"})
    assert run.code == 2
    assert "base32" in run.stderr
    assert vendor.seen == []


async def test_no_password_and_no_terminal_is_refused_with_the_ways_to_give_one(
    vendor: Vendor, settings: Settings, tmp_path: Path
) -> None:
    run = await run_connect(vendor, settings, tmp_path, password="")
    assert run.code == 2
    assert "--password-file" in run.stderr
    assert vendor.seen == []


class GenericKeeper:
    """The runtime's kind of keeper: one VendorCredentials, whatever the vendor."""

    def __init__(self, credentials: VendorCredentials):
        self.credentials = credentials
        self.saved: list[VendorCredentials] = []

    def load(self) -> VendorCredentials:
        return self.credentials

    def save(self, credentials: VendorCredentials) -> None:
        self.credentials = credentials
        self.saved.append(credentials)


async def test_the_runtimes_generic_keeper_carries_a_carecloud_session(
    vendor: Vendor,
) -> None:
    clock = vendor.clock
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=vendor.app())) as http:
        first = await log_in(http, BASE_URL, USERNAME, PASSWORD, TOTP_SECRET, clock)
        generic = GenericKeeper(first.to_vendor_credentials())
        client = build_client(
            http,
            OverVendorKeeper(generic),
            UpstreamBudget(clock, 100, None),
            ResponseCache(clock),
            clock,
        )
        clock.advance(13 * 3600)
        await readiness_probe(client)
    (saved,) = generic.saved
    assert (saved.base_url, saved.client_id, saved.client_secret) == (BASE_URL, USERNAME, PASSWORD)
    assert saved.access_token in vendor.sessions
    assert saved.refresh_token in vendor.refresh_tokens
    assert saved.scope == f"business_entity:{BUSINESS_ENTITY_ID}"
    assert saved.login_secret == first.totp_secret  # later logins make fresh codes with it
    line = describe_connection(saved)
    assert line == f"CareCloud at {BASE_URL} (user {USERNAME})"


async def test_the_password_may_come_from_standard_input(
    vendor: Vendor, settings: Settings, tmp_path: Path
) -> None:
    parser = argparse.ArgumentParser()
    add_connect_arguments(parser)
    totp_file = secret_file(tmp_path, "totp", TOTP_SECRET)
    argv = ["--base-url", BASE_URL, "--username", USERNAME, "--password-stdin"]
    stderr = io.StringIO()
    code = await connect(
        parser.parse_args([*argv, "--totp-secret-file", str(totp_file)]),
        settings,
        transport=httpx.ASGITransport(app=vendor.app()),
        clock=vendor.clock,
        stdin=io.StringIO(PASSWORD + "\n"),
        stdout=io.StringIO(),
        stderr=stderr,
    )
    assert code == 0, stderr.getvalue()
    both = await connect(
        parser.parse_args([*argv, "--totp-secret-stdin"]),
        settings,
        transport=httpx.ASGITransport(app=vendor.app()),
        clock=vendor.clock,
        stdin=io.StringIO(PASSWORD + "\n"),
        stdout=io.StringIO(),
        stderr=stderr,
    )
    assert both == 2
    assert "standard input can carry one secret" in stderr.getvalue()


async def test_the_embedded_sandbox_login_hook_returns_generic_credentials(
    vendor: Vendor,
) -> None:
    now = vendor.clock.now()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=vendor.app())) as http:
        stored = await log_in_at(http, BASE_URL, USERNAME, PASSWORD, TOTP_SECRET, now)
    assert (stored.base_url, stored.client_id, stored.client_secret) == (
        BASE_URL,
        USERNAME,
        PASSWORD,
    )
    assert stored.access_token in vendor.sessions
    assert stored.expires_at == now + timedelta(seconds=900)


async def test_the_sandboxs_connect_hint_connects(vendor: Vendor, tmp_path: Path) -> None:
    """`facade sandbox carecloud` prints a connect command and writes its login files; that
    command, word for word, logs in and stores the connection."""
    state, clock = vendor.state, vendor.clock
    write_credentials(state, tmp_path / "login")
    words = shlex.split(connect_hint(state, BASE_URL, tmp_path / "login"))
    assert words[:3] == ["facade", "connect", "carecloud"]
    parser = argparse.ArgumentParser()
    add_connect_arguments(parser)
    args = parser.parse_args([*words[3:], "--data-dir", str(tmp_path / "data")])
    stdout, stderr = io.StringIO(), io.StringIO()
    code = await connect(
        args,
        Settings(),
        transport=httpx.ASGITransport(app=create_sandbox_app(state)),
        clock=clock,
        stdin=io.StringIO(""),
        stdout=stdout,
        stderr=stderr,
    )
    assert code == 0, stderr.getvalue()
    assert [e.status for e in state.request_log if e.endpoint == "authenticate"] == [200]
    assert (tmp_path / "data" / "facade.db").exists()
