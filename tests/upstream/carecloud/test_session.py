"""CareCloud session keeping against the sandbox: refresh before expiry with rotating refresh
tokens, a fresh TOTP login when the refresh token is dead, one renewal for many concurrent
calls, and no retry storm against a refused login or a locked account. No secret in any log.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

import httpx
import pytest

from facade.errors import UpstreamAuthFailed
from facade.upstream.carecloud.connection import log_in
from facade.upstream.carecloud.credentials import CareCloudCredentials
from facade.upstream.carecloud.sandbox.app import create_sandbox_app
from facade.upstream.carecloud.sandbox.state import Fault
from facade.upstream.carecloud.session import (
    REFRESH_MARGIN,
    AccountLocked,
    LoginRefused,
    MfaRefused,
)
from facade.upstream.carecloud.totp import totp
from tests.upstream.carecloud.client_harness import (  # noqa: F401  (fixtures)
    BASE_URL,
    WRONG_SECRET,
    Connect,
    Connected,
    connect_fixture,
    practice_fixture,
)

SESSION_SECONDS = 900


async def test_a_session_about_to_end_is_refreshed_first(connect: Connect) -> None:
    c = await connect()
    c.clock.advance(SESSION_SECONDS - REFRESH_MARGIN.total_seconds() + 1)
    await c.call()
    assert [a.status for a in c.refreshes()] == [200]
    assert c.statuses() == [200]  # no 401 first: renewed before it ended
    renewed = c.keeper.saved[-1]
    assert renewed.session_token != c.first.session_token
    assert renewed.refresh_token != c.first.refresh_token  # rotated
    assert renewed.expires_at > c.first.expires_at


async def test_a_rotated_refresh_token_is_dead(connect: Connect) -> None:
    c = await connect()
    c.clock.advance(SESSION_SECONDS)
    await c.call()
    assert c.first.refresh_token not in c.state.refresh_grants
    assert c.keeper.credentials.refresh_token in c.state.refresh_grants


async def test_session_expired_mid_call_is_renewed_once_and_the_call_retried(
    connect: Connect,
) -> None:
    c = await connect()
    c.state.fail_call(1, Fault.EXPIRE_SESSION)
    await c.call()
    assert c.statuses() == [401, 200]
    assert [a.status for a in c.refreshes()] == [200]
    assert len(c.logins()) == 1  # only the connect login


async def test_a_dead_refresh_token_means_a_login_with_a_fresh_code(connect: Connect) -> None:
    c = await connect()
    c.clock.advance(13 * 3600)  # session and refresh token both gone
    await c.call()
    logins = c.logins()
    assert [a.status for a in c.refreshes()] == [401]
    assert [a.status for a in logins] == [200, 200]
    assert logins[1].body["mfa_code"] == totp(c.user.totp_secret, c.clock.now())
    assert logins[1].body["mfa_code"] != logins[0].body["mfa_code"]
    assert c.statuses() == [200]


async def test_a_second_login_within_one_step_does_not_replay_its_code(
    connect: Connect,
) -> None:
    """A strict sandbox takes each code once and accepts the next step's code too: a session
    that logs in twice within one step sends that one, without a wait and a refusal."""
    c = await connect()
    c.state.single_use_codes = True
    c.clock.advance(30)  # past the step connect's login spent
    await c.session.login()
    c.forget_sessions()
    await c.call()
    logins = c.logins()
    assert [a.status for a in logins] == [200, 200, 200]
    assert len({a.body["mfa_code"] for a in logins}) == 3
    assert c.clock.slept == []


async def test_a_code_another_login_spent_is_retried_once_with_the_next_step(
    connect: Connect,
) -> None:
    """`facade connect` (another session) spent this step's code; the serving session
    cannot know, is refused once, and sends the next step's code."""
    c = await connect()
    c.state.single_use_codes = True
    await _spend_the_current_code(c)
    c.forget_sessions()
    await c.call()
    now = c.clock.now()
    # (the other connect went through its own transport: not in this record)
    assert [(a.status, a.body["mfa_code"]) for a in c.logins()][1:] == [
        (401, totp(c.user.totp_secret, now)),
        (200, totp(c.user.totp_secret, now + timedelta(seconds=30))),
    ]
    assert c.statuses() == [401, 200]  # invalid_session, then the call again


async def test_concurrent_calls_share_one_renewal(connect: Connect) -> None:
    c = await connect()
    c.clock.advance(13 * 3600)
    await asyncio.gather(*(c.call() for _ in range(8)))
    assert len(c.logins()) == 2  # connect's, and one for all eight
    assert len(c.refreshes()) == 1
    assert c.statuses() == [200] * 8


async def test_concurrent_session_ended_answers_share_one_renewal(connect: Connect) -> None:
    c = await connect()
    c.forget_sessions()  # a vendor restart: invalid_session, and no refresh token
    await asyncio.gather(*(c.call() for _ in range(5)))
    assert [a.status for a in c.logins()] == [200, 200]
    assert c.statuses().count(200) == 5


async def test_a_refused_password_is_not_tried_again(connect: Connect) -> None:
    c = await connect(password="not the password")
    c.forget_sessions()
    with pytest.raises(LoginRefused):
        await c.call()
    with pytest.raises(LoginRefused):
        await c.call()
    # connect's good login, the dead refresh token, one refused login: the second call asked
    # CareCloud nothing (each refusal brings its lockout nearer).
    assert [a.status for a in c.auth_calls()] == [200, 401, 401]
    assert c.user.username not in c.state.locked_until


async def test_a_refused_code_is_reported_as_mfa(connect: Connect) -> None:
    c = await connect(totp_secret=WRONG_SECRET)
    c.forget_sessions()
    with pytest.raises(MfaRefused, match="TOTP"):
        await c.call()
    with pytest.raises(MfaRefused):
        await c.call()
    # connect's login, then the wrong code and its one retry; the second call asks nothing.
    assert [a.status for a in c.logins()] == [200, 401, 401]


async def test_a_reconnect_lifts_a_refusal(connect: Connect) -> None:
    c = await connect(password="not the password")
    c.forget_sessions()
    with pytest.raises(LoginRefused):
        await c.call()
    # An operator reconnects: the store now holds good secrets and a live session.
    c.clock.advance(30)
    c.keeper.credentials = await _connect_again(c)
    await c.call()
    assert c.statuses()[-1] == 200


async def test_a_locked_account_is_not_asked_again_until_the_lock_ends(
    connect: Connect,
) -> None:
    c = await connect()
    c.forget_sessions()
    c.lock_account()
    with pytest.raises(AccountLocked) as raised:
        await c.call()
    assert isinstance(raised.value, UpstreamAuthFailed)  # a 503 "security" OperationOutcome
    for _ in range(5):
        with pytest.raises(AccountLocked):
            await c.call()
    assert [a.status for a in c.logins()] == [200, 403]
    c.clock.advance(16 * 60)
    await c.call()
    assert [a.status for a in c.logins()] == [200, 403, 200]


async def test_no_secret_token_or_code_reaches_the_log(
    connect: Connect, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    c = await connect()
    c.state.fail_call(2, Fault.EXPIRE_SESSION)
    c.state.fail_call(3, Fault.THROTTLED)
    c.state.fail_call(4, Fault.SERVER_ERROR)
    await c.call()
    await c.call()
    c.clock.advance(13 * 3600)
    await c.client.list_all("patients", {"last_name": c.patients[0]["last_name"]}, reason="t")
    await c.client.get_record("patients", c.patients[0]["id"], reason="test")
    secrets = {c.user.password, c.user.totp_secret, c.patients[0]["id"]}
    secrets.add(c.patients[0]["last_name"])
    for sent in c.auth_calls():
        secrets.update(str(v) for k, v in sent.body.items() if k != "grant_type")
    for saved in [c.first, *c.keeper.saved]:
        secrets.update({saved.session_token, saved.refresh_token})
    # As `facade serve` configures logging: httpx's own request lines (whole URLs) are off.
    ours = [r for r in caplog.records if r.name.startswith("facade")]
    logged = "".join(r.getMessage() + repr(r.args) for r in ours)
    assert "carecloud" in logged  # the client did log its calls
    assert [s for s in secrets if s and s in logged] == []


def test_credentials_repr_hides_every_secret() -> None:
    credentials = CareCloudCredentials(
        base_url=BASE_URL,
        username="facade-bot",
        password="correct horse battery staple",
        totp_secret=WRONG_SECRET,
        session_token="s" * 32,
        refresh_token="r" * 40,
    )
    shown = repr(credentials) + repr(credentials.to_vendor_credentials())
    for secret in ("correct horse battery staple", WRONG_SECRET, "s" * 32, "r" * 40):
        assert secret not in shown
    assert "facade-bot" in shown


async def _connect_again(c: Connected) -> CareCloudCredentials:
    """`facade connect` run again, in its own HTTP client and session."""
    transport = httpx.ASGITransport(app=create_sandbox_app(c.state))
    async with httpx.AsyncClient(transport=transport) as http:
        user = c.user
        return await log_in(http, BASE_URL, user.username, user.password, user.totp_secret, c.clock)


async def _spend_the_current_code(c: Connected) -> None:
    await _connect_again(c)
