"""Login answers the same for a username that has an account and one that does not: the same
status and page on every attempt, through the lockout, at the cost of exactly one argon2
verification each (so the same time). TOTP failures count on the same lockout.

The app is the real one over httpx.ASGITransport; argon2 is a real, cheap PasswordHasher
that counts its verifications, handed to build_runtime (nothing patched).
"""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
from collections.abc import AsyncIterator
from typing import Literal

import httpx
import pyotp
import pytest
from argon2 import PasswordHasher

from facade.app import create_app
from facade.auth.server import Authority
from facade.clock import FakeClock
from facade.runtime import Runtime, build_runtime
from facade.settings import Settings
from facade.upstream.drchrono.sandbox.state import SandboxState
from tests.auth.conftest import PASSWORD, JwksHost, csrf_of
from tests.conftest import FACADE_BASE

KNOWN = "pat"
UNKNOWN = "nobody-has-this-name"
#: A login with no authorization in progress ends on a "You are logged in." page.
LOGGED_IN = 200


class CountingHasher(PasswordHasher):
    """argon2 with test-sized costs that records every verification it performs."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=1024, parallelism=1)
        self.verifications = 0

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:  # noqa: A002
        self.verifications += 1
        return super().verify(hash, password)


@pytest.fixture
def hasher() -> CountingHasher:
    return CountingHasher()


@pytest.fixture
async def counted_runtime(
    settings: Settings,
    sandbox: SandboxState,
    clock: FakeClock,
    jwks_host: JwksHost,
    hasher: CountingHasher,
) -> AsyncIterator[Runtime]:
    built = await build_runtime(
        settings,
        sandbox=sandbox,
        clock=clock,
        jwks_transport=httpx.ASGITransport(app=jwks_host.app),
        password_hasher=hasher,
    )
    yield built
    await built.aclose()


@pytest.fixture
def users(counted_runtime: Runtime) -> Authority:
    assert counted_runtime.authorization is not None
    counted_runtime.authorization.users.create(KNOWN, PASSWORD, "Patient/1")
    return counted_runtime.authorization


@pytest.fixture
async def browser(counted_runtime: Runtime, users: Authority) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(counted_runtime.settings, counted_runtime)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=FACADE_BASE
    ) as client:
        yield client


async def attempt(browser: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    page = await browser.get("/auth/login")
    return await browser.post(
        "/auth/login",
        data={"csrf_token": csrf_of(page.text), "username": username, "password": password},
    )


def answer(response: httpx.Response) -> tuple[int, str, dict[str, str]]:
    """What a guesser sees: status, page, and every header but the session cookie."""
    headers = {k: v for k, v in response.headers.items() if k.lower() != "set-cookie"}
    return response.status_code, response.text, headers


async def test_known_and_unknown_usernames_answer_alike_through_the_lockout(
    browser: httpx.AsyncClient,
) -> None:
    known = [answer(await attempt(browser, KNOWN, "wrong password")) for _ in range(6)]
    unknown = [answer(await attempt(browser, UNKNOWN, "wrong password")) for _ in range(6)]

    assert [status for status, _, _ in known] == [401, 401, 401, 401, 403, 403]
    assert known == unknown
    assert "Too many failed attempts" in known[4][1]
    # Locked means locked: the right password changes nothing a guesser could tell apart.
    assert answer(await attempt(browser, KNOWN, PASSWORD)) == known[5]


async def test_the_lockout_ends_after_15_minutes_for_both(
    browser: httpx.AsyncClient, clock: FakeClock
) -> None:
    for username in (KNOWN, UNKNOWN):
        for _ in range(5):
            await attempt(browser, username, "wrong password")
    clock.advance(15 * 60 + 1)
    known = await attempt(browser, KNOWN, "wrong password")
    unknown = await attempt(browser, UNKNOWN, "wrong password")
    assert answer(known) == answer(unknown)
    assert known.status_code == 401
    logged_in = await attempt(browser, KNOWN, PASSWORD)
    assert logged_in.status_code == LOGGED_IN, logged_in.text


@pytest.mark.parametrize(
    ("username", "password", "status"),
    [
        (KNOWN, PASSWORD, LOGGED_IN),
        (KNOWN, "wrong password", 401),
        (UNKNOWN, "wrong password", 401),
        (UNKNOWN, PASSWORD, 401),
    ],
)
async def test_every_login_costs_exactly_one_argon2_verification(
    browser: httpx.AsyncClient, hasher: CountingHasher, username: str, password: str, status: int
) -> None:
    before = hasher.verifications
    response = await attempt(browser, username, password)
    assert response.status_code == status
    assert hasher.verifications - before == 1


@pytest.mark.parametrize("username", [KNOWN, UNKNOWN])
async def test_a_locked_username_still_costs_one_argon2_verification(
    browser: httpx.AsyncClient, hasher: CountingHasher, username: str
) -> None:
    for _ in range(5):
        await attempt(browser, username, "wrong password")
    before = hasher.verifications
    assert (await attempt(browser, username, PASSWORD)).status_code == 403
    assert hasher.verifications - before == 1


async def test_parallel_guesses_get_no_more_than_five_tries(browser: httpx.AsyncClient) -> None:
    """Each attempt is counted before its (slow) check, so a burst cannot outrun the limit."""
    pages = [await browser.get("/auth/login") for _ in range(10)]
    csrf = csrf_of(pages[-1].text)
    burst = await asyncio.gather(
        *(
            browser.post(
                "/auth/login",
                data={"csrf_token": csrf, "username": KNOWN, "password": f"guess {n}"},
            )
            for n in range(10)
        )
    )
    statuses = sorted(r.status_code for r in burst)
    assert statuses == [401] * 4 + [403] * 6


async def test_case_and_spacing_do_not_give_more_tries(browser: httpx.AsyncClient) -> None:
    for variant in ("pat", "PAT", " Pat", "pat ", "ｐａｔ"):
        await attempt(browser, variant, "wrong password")
    assert (await attempt(browser, KNOWN, PASSWORD)).status_code == 403


async def test_the_throttle_table_holds_no_username(
    browser: httpx.AsyncClient, settings: Settings
) -> None:
    await attempt(browser, UNKNOWN, "wrong password")
    with sqlite3.connect(settings.data_dir / "facade.db") as db:
        keys = [row[0] for row in db.execute("SELECT username_key FROM login_throttle")]
    assert keys == [hashlib.sha256(UNKNOWN.encode()).hexdigest()]


async def test_a_good_login_clears_the_count(browser: httpx.AsyncClient) -> None:
    for _ in range(4):
        await attempt(browser, KNOWN, "wrong password")
    assert (await attempt(browser, KNOWN, PASSWORD)).status_code == LOGGED_IN
    statuses = [(await attempt(browser, KNOWN, "wrong password")).status_code for _ in range(4)]
    assert statuses == [401] * 4


async def test_totp_failures_count_on_the_same_lockout(
    browser: httpx.AsyncClient, users: Authority, clock: FakeClock
) -> None:
    secret = users.users.create("mfa", PASSWORD, "Patient/2", totp=True)
    assert (await attempt(browser, "mfa", PASSWORD)).headers["location"] == "/auth/login/totp"
    page = await browser.get("/auth/login/totp")
    codes = []
    for _ in range(4):  # the password was attempt 1; codes are attempts 2 to 5
        wrong = await browser.post(
            "/auth/login/totp", data={"csrf_token": csrf_of(page.text), "code": "000000"}
        )
        codes.append(wrong.status_code)
        if wrong.status_code == 403:
            break
    assert codes == [401, 401, 401, 403]
    # Locked now for the password too, even the right one, and the TOTP step is over.
    assert (await attempt(browser, "mfa", PASSWORD)).status_code == 403
    right = pyotp.TOTP(secret).at(clock.now())
    late = await browser.post(
        "/auth/login/totp", data={"csrf_token": csrf_of(page.text), "code": right}
    )
    assert late.status_code == 403


async def test_a_known_password_cannot_try_codes_without_limit(
    browser: httpx.AsyncClient, users: Authority
) -> None:
    """Logging in with the password again must not reset the count that wrong codes built."""
    users.users.create("mfa", PASSWORD, "Patient/2", totp=True)
    statuses = []
    for _ in range(3):
        statuses.append((await attempt(browser, "mfa", PASSWORD)).status_code)
        page = await browser.get("/auth/login/totp")
        if page.status_code != 200:
            break
        wrong = await browser.post(
            "/auth/login/totp", data={"csrf_token": csrf_of(page.text), "code": "000000"}
        )
        statuses.append(wrong.status_code)
    # password, code, password, code, password (5th attempt) then the code page is gone.
    assert statuses == [303, 401, 303, 401, 303, 403]
