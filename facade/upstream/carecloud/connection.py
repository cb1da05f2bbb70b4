"""Connecting facade to a CareCloud account: `facade connect carecloud --base-url URL
--username U [--password-file F] [--totp-secret-file F] [--data-dir DIR]`.

Secrets come from files, standard input, the environment or a prompt, never only the command
line. facade logs in once to prove them; only a login CareCloud accepted is stored, encrypted.
Nothing here prints or logs a password, a TOTP secret, a code or a token.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from datetime import datetime
from pathlib import Path
from typing import TextIO

import httpx

from facade.clock import Clock
from facade.errors import FacadeError
from facade.secret_input import SecretNotGiven, SecretOption
from facade.settings import Settings
from facade.store.connections import ConnectionStore, VendorCredentials
from facade.store.database import Database
from facade.store.private_files import secure_data_dir
from facade.store.secrets import SecretBox
from facade.upstream.carecloud.credentials import (
    CareCloudCredentials,
    InvalidTotpSecret,
    MemoryKeeper,
    StoredKeeper,
    checked_totp_secret,
)
from facade.upstream.carecloud.session import (
    AccountLocked,
    CareCloudSession,
    LoginRefused,
    MfaRefused,
)

PASSWORD = SecretOption(
    name="password",
    env="FACADE_CARECLOUD_PASSWORD",
    what="the CareCloud password",
    note=" (on a terminal without either, facade asks)",
)
TOTP_SECRET = SecretOption(
    name="totp-secret",
    env="FACADE_CARECLOUD_TOTP_SECRET",
    what="the TOTP secret",
    note=" (base32, as the authenticator enrolment showed it; on a terminal facade asks)",
)

#: What connect says when CareCloud refuses the login (nothing is stored then).
_REFUSALS: dict[type[FacadeError], str] = {
    LoginRefused: "CareCloud refused the username or password",
    MfaRefused: "CareCloud refused the one-time code: check the TOTP secret and this "
    "machine's clock",
    AccountLocked: "CareCloud has locked the account after repeated failed logins; wait "
    "about 15 minutes before trying again",
}


def add_connect_arguments(parser: argparse.ArgumentParser, *, storage_options: bool = True) -> None:
    """CareCloud's connect options; `storage_options` adds --data-dir and --database-url
    (leave them out when the generic connect command declares them)."""
    parser.add_argument("--base-url", required=True, help="CareCloud's API base URL")
    parser.add_argument("--username", required=True, help="the CareCloud user facade logs in as")
    PASSWORD.add_to(parser)
    TOTP_SECRET.add_to(parser)
    if storage_options:
        parser.add_argument("--data-dir", type=Path, help="state directory (FACADE_DATA_DIR)")
        parser.add_argument("--database-url", help="SQLAlchemy URL (FACADE_DATABASE_URL)")


async def log_in(
    http: httpx.AsyncClient,
    base_url: str,
    username: str,
    password: str,
    totp_secret: str,
    clock: Clock,
    timeout_seconds: float = 20.0,
) -> CareCloudCredentials:
    """Log in once with username, password and the current code: credentials with a live
    session, or the refusal (LoginRefused, MfaRefused, AccountLocked, Upstream*)."""
    secret = checked_totp_secret(totp_secret)  # InvalidTotpSecret before anything is sent
    keeper = MemoryKeeper(
        CareCloudCredentials(
            base_url=base_url.rstrip("/"),
            username=username,
            password=password,
            totp_secret=secret,
        )
    )
    session = CareCloudSession(http, keeper, clock, timeout_seconds=timeout_seconds)
    await session.login()
    return keeper.credentials


async def log_in_at(
    http: httpx.AsyncClient,
    base_url: str,
    username: str,
    password: str,
    totp_secret: str,
    now: datetime,
) -> VendorCredentials:
    """`log_in` at a given moment, as the generic keeper stores it (the embedded sandbox's
    login hook: `EmbeddedSandbox.login(http, state, now)`), the TOTP secret included so
    later logins can make fresh codes."""
    credentials = await log_in(http, base_url, username, password, totp_secret, _At(now))
    return credentials.to_vendor_credentials()


class _At(Clock):
    """A clock stopped at one moment: one login needs only `now`."""

    def __init__(self, moment: datetime):
        self._moment = moment

    def now(self) -> datetime:
        return self._moment


def describe_connection(stored: VendorCredentials) -> str:
    """One line naming a stored connection, without a secret (start-up, logs)."""
    return f"CareCloud at {stored.base_url} (user {stored.client_id})"


def stored_keeper(database: Database, box: SecretBox) -> StoredKeeper:
    """The keeper a running facade reads its CareCloud connection through."""
    return StoredKeeper(ConnectionStore(database, box))


def store_credentials(settings: Settings, credentials: CareCloudCredentials) -> None:
    secure_data_dir(settings.data_dir)
    database = Database(settings.resolved_database_url)
    try:
        database.migrate()
        box = SecretBox.from_settings(settings.secret_key, settings.data_dir)
        stored_keeper(database, box).save(credentials)
    finally:
        database.dispose()


async def connect(
    args: argparse.Namespace,
    settings: Settings,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    clock: Clock | None = None,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """`facade connect carecloud`: 0 connected, 1 CareCloud refused or failed, 2 bad input.
    `transport` replaces the network (tests)."""
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    settings = settings.with_overrides(
        data_dir=getattr(args, "data_dir", None), database_url=getattr(args, "database_url", None)
    )
    if getattr(args, "password_stdin", False) and getattr(args, "totp_secret_stdin", False):
        print(
            "facade: standard input can carry one secret: give the other with --*-file, "
            "its environment variable or the prompt",
            file=stderr,
        )
        return 2
    try:
        password = PASSWORD.read(args, stdin=stdin, stderr=stderr) or ""
        totp_secret = TOTP_SECRET.read(args, stdin=stdin, stderr=stderr) or ""
        checked_totp_secret(totp_secret)
    except (SecretNotGiven, InvalidTotpSecret) as refusal:
        print(f"facade: {refusal}", file=stderr)
        return 2
    try:
        async with httpx.AsyncClient(
            transport=transport, timeout=settings.upstream_timeout_seconds
        ) as http:
            credentials = await log_in(
                http,
                args.base_url,
                args.username,
                password,
                totp_secret,
                clock or Clock(),
                settings.upstream_timeout_seconds,
            )
        store_credentials(settings, credentials)
    except FacadeError as exc:
        said = _REFUSALS.get(type(exc), exc.message)
        print(f"facade: connecting failed: {said}; nothing was stored", file=stderr)
        return 1
    except Exception as exc:  # the CLI's last line of defence: no traceback, no SQL, no secrets
        print(f"facade: connecting failed ({type(exc).__name__}); see the log", file=stderr)
        logging.getLogger("facade").debug("connect failed", exc_info=True)
        return 1
    print(
        f"connected: facade serve --vendor carecloud --data-dir {settings.data_dir} now serves "
        f"{credentials.base_url}",
        file=stdout,
    )
    return 0


def run_connect(args: argparse.Namespace, settings: Settings) -> int:
    """The synchronous entry the CLI's vendor table calls."""
    return asyncio.run(connect(args, settings))
