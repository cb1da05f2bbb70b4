"""CareCloud session keeping: refresh before expiry with rotating refresh tokens, a fresh
TOTP login when the refresh token is dead, one renewal for many concurrent calls, and no
retry storm against a refused login or a locked account. No secret in any log line.
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
from facade.upstream.carecloud.session import (
    REFRESH_MARGIN,
    AccountLocked,
    LoginRefused,
    MfaRefused,
)
from facade.upstream.carecloud.totp import totp
from tests.upstream.carecloud.client_harness import Connect, connect_fixture  # noqa: F401
from tests.upstream.carecloud.fake_carecloud import (
    BASE_URL,
    PASSWORD,
    SESSION_SECONDS,
    TOTP_SECRET,
    USERNAME,
    FakeCareCloud,
)

WRONG_SECRET = "MFRGGZDFMZTWQ2LKNNWG23TPOBYXE43U"


async def test_a_session_about_to_end_is_refreshed_first(connect: Connect) -> None:
    c = await connect()
    first = c.keeper.credentials
    c.clock.advance(SESSION_SECONDS - REFRESH_MARGIN.total_seconds() + 1)
    await c.call()
    assert len(c.fake.refreshes()) == 1
    assert c.fake.api()[-1].status == 200  # no 401 first: renewed before it ended
    renewed = c.keeper.saved[-1]
    assert renewed.session_token != first.session_token
    assert renewed.refresh_token != first.refresh_token  # rotated
    assert renewed.expires_at > first.expires_at


async def test_a_rotated_refresh_token_is_dead(connect: Connect) -> None:
    c = await connect()
    old_refresh = c.keeper.credentials.refresh_token
    c.clock.advance(SESSION_SECONDS)
    await c.call()
    assert old_refresh not in c.fake.refresh_tokens
    assert c.keeper.credentials.refresh_token in c.fake.refresh_tokens


async def test_session_expired_mid_call_is_renewed_once_and_the_call_retried(
    connect: Connect,
) -> None:
    c = await connect()
    c.fake.faults = {1: "expire"}
    await c.call()
    assert [s.status for s in c.fake.api()] == [401, 200]
    assert len(c.fake.refreshes()) == 1
    assert len(c.fake.logins()) == 1  # only the connect login


async def test_a_dead_refresh_token_means_a_login_with_a_fresh_code(connect: Connect) -> None:
    c = await connect()
    c.clock.advance(13 * 3600)  # session and refresh token both gone
    await c.call()
    logins = c.fake.logins()
    assert [s.status for s in c.fake.refreshes()] == [401]
    assert [s.status for s in logins] == [200, 200]
    assert logins[1].body["mfa_code"] == totp(TOTP_SECRET, c.clock.now())
    assert logins[1].body["mfa_code"] != logins[0].body["mfa_code"]
    assert c.fake.api()[-1].status == 200


async def test_a_second_login_within_one_step_does_not_replay_its_code(
    connect: Connect,
) -> None:
    """The fake (like a careful vendor) takes each code once and accepts the next step's
    code too: a session that logs in twice within one step sends that one, without a wait
    and without a refusal."""
    c = await connect()
    c.clock.advance(30)  # past the step connect's login spent
    await c.session.login()
    c.fake.forget_sessions()  # a vendor restart: invalid_session, and no refresh token
    await c.call()
    logins = c.fake.logins()
    assert [s.status for s in logins] == [200, 200, 200]
    assert len({s.body["mfa_code"] for s in logins}) == 3
    assert c.clock.slept == []


async def test_a_code_another_login_spent_is_retried_once_with_the_next_step(
    connect: Connect,
) -> None:
    """`facade connect` (another session) spent this step's code; the serving session
    cannot know, is refused once, and sends the next step's code."""
    c = await connect()
    c.fake.forget_sessions()
    await c.call()
    assert [(s.status, s.body["mfa_code"]) for s in c.fake.logins()][1:] == [
        (401, totp(TOTP_SECRET, c.clock.now())),
        (200, totp(TOTP_SECRET, c.clock.now() + timedelta(seconds=30))),
    ]
    assert c.fake.api()[-1].status == 200


async def test_concurrent_calls_share_one_renewal(connect: Connect) -> None:
    c = await connect()
    c.clock.advance(13 * 3600)
    await asyncio.gather(*(c.call() for _ in range(8)))
    assert len(c.fake.logins()) == 2  # connect's, and one for all eight
    assert len(c.fake.refreshes()) == 1
    assert [s.status for s in c.fake.api()] == [200] * 8


async def test_concurrent_session_expired_answers_share_one_renewal(connect: Connect) -> None:
    c = await connect()
    c.fake.forget_sessions()
    await asyncio.gather(*(c.call() for _ in range(5)))
    # connect's login, then one renewal for all five: a refusal of the spent code, and the
    # next step's code.
    assert [s.status for s in c.fake.logins()] == [200, 401, 200]
    assert sum(1 for s in c.fake.api() if s.status == 200) == 5


async def test_a_refused_password_is_not_tried_again(connect: Connect) -> None:
    c = await connect(password="not the password")
    c.fake.forget_sessions()
    with pytest.raises(LoginRefused):
        await c.call()
    with pytest.raises(LoginRefused):
        await c.call()
    assert len(c.fake.logins()) == 2  # connect's good one, then one refused: no storm
    # and the spent refresh token is not offered again either: the second call asked nothing.
    assert [s.status for s in c.fake.auth_calls()] == [200, 401, 401]
    assert c.fake.locked_until is None


async def test_a_refused_code_is_reported_as_mfa(connect: Connect) -> None:
    c = await connect(totp_secret=WRONG_SECRET)
    c.fake.forget_sessions()
    with pytest.raises(MfaRefused, match="TOTP"):
        await c.call()
    with pytest.raises(MfaRefused):
        await c.call()
    # connect's login, then the wrong code and its one retry; the second call asks nothing.
    assert [s.status for s in c.fake.logins()] == [200, 401, 401]


async def test_a_reconnect_lifts_a_refusal(connect: Connect) -> None:
    c = await connect(password="not the password")
    c.fake.forget_sessions()
    with pytest.raises(LoginRefused):
        await c.call()
    # An operator reconnects: the store now holds good secrets and a live session.
    c.clock.advance(30)
    fresh = await _login_as_connect_would(c.fake)
    c.keeper.credentials = fresh
    await c.call()
    assert c.fake.api()[-1].status == 200


async def test_a_locked_account_is_not_asked_again_until_the_lock_ends(
    connect: Connect,
) -> None:
    c = await connect()
    c.fake.forget_sessions()
    c.fake.locked_until = c.clock.now() + timedelta(minutes=15)
    with pytest.raises(AccountLocked) as raised:
        await c.call()
    assert isinstance(raised.value, UpstreamAuthFailed)  # a 503 "security" OperationOutcome
    for _ in range(5):
        with pytest.raises(AccountLocked):
            await c.call()
    assert [s.status for s in c.fake.logins()] == [200, 403]
    c.clock.advance(16 * 60)
    await c.call()
    assert [s.status for s in c.fake.logins()] == [200, 403, 200]


async def test_no_secret_token_or_code_reaches_the_log(
    connect: Connect, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    c = await connect()
    c.fake.faults = {2: "expire", 3: "429", 4: "500"}
    await c.call()
    await c.call()
    c.clock.advance(13 * 3600)
    await c.client.list_all("patients", {}, reason="test")
    await c.client.get_record("patients", c.fake.patients[0]["id"], reason="test")
    secrets = {PASSWORD, TOTP_SECRET, c.fake.patients[0]["id"]}
    for seen in c.fake.auth_calls():
        secrets.update(str(v) for k, v in seen.body.items() if k != "grant_type")
    for saved in c.keeper.saved:
        secrets.update({saved.session_token, saved.refresh_token})
    # As `facade serve` configures logging: httpx's own request lines (whole URLs) are off.
    ours = [r for r in caplog.records if r.name.startswith("facade")]
    logged = "".join(r.getMessage() + repr(r.args) for r in ours)
    assert "carecloud" in logged  # the client did log its calls
    assert [s for s in secrets if s and s in logged] == []


def test_credentials_repr_hides_every_secret() -> None:
    credentials = CareCloudCredentials(
        base_url="http://carecloud.sandbox",
        username="facade-bot",
        password=PASSWORD,
        totp_secret=TOTP_SECRET,
        session_token="s" * 32,
        refresh_token="r" * 40,
    )
    shown = repr(credentials) + repr(credentials.to_vendor_credentials())
    for secret in (PASSWORD, TOTP_SECRET, "s" * 32, "r" * 40):
        assert secret not in shown
    assert "facade-bot" in shown


async def _login_as_connect_would(fake: FakeCareCloud) -> CareCloudCredentials:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=fake.app())) as http:
        good = await log_in(http, BASE_URL, USERNAME, PASSWORD, TOTP_SECRET, fake.clock)
    return good
