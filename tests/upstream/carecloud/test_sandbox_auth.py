"""POST /authenticate: password + TOTP, refresh rotation, 15-minute sessions, and the lockout
after five consecutive failures, with the exact error bodies of the wire contract.
"""

from __future__ import annotations

import httpx

from facade.upstream.carecloud.sandbox.state import ManualClock, SandboxState
from facade.upstream.carecloud.totp import totp
from tests.upstream.carecloud.conftest import login_body


async def test_good_login_returns_a_session_a_refresh_token_and_the_business_entity(
    client: httpx.AsyncClient, state: SandboxState
) -> None:
    response = await client.post("/authenticate", json=login_body(state))

    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 900
    assert len(body["session_token"]) == 32
    assert len(body["refresh_token"]) == 40
    assert body["business_entity_id"] == state.dataset.business_entity["id"]
    me = await client.get(
        "/authorization", headers={"Authorization": f"Bearer {body['session_token']}"}
    )
    assert me.status_code == 200
    assert me.json()["user"]["username"] == state.default_user.username
    assert me.json()["business_entity"]["time_zone"] == "America/New_York"


async def test_a_code_from_the_previous_step_is_still_accepted(
    client: httpx.AsyncClient, state: SandboxState, clock: ManualClock
) -> None:
    code = totp(state.default_user.totp_secret, clock())
    clock.advance(30)

    response = await client.post("/authenticate", json=login_body(state, mfa_code=code))

    assert response.status_code == 200


async def test_wrong_password_is_invalid_credentials(
    client: httpx.AsyncClient, state: SandboxState
) -> None:
    response = await client.post("/authenticate", json=login_body(state, password="not-it"))

    assert response.status_code == 401
    assert response.json() == {"error": "invalid_credentials"}


async def test_unknown_user_is_invalid_credentials(
    client: httpx.AsyncClient, state: SandboxState
) -> None:
    response = await client.post("/authenticate", json=login_body(state, username="nobody"))

    assert response.json() == {"error": "invalid_credentials"}


async def test_missing_mfa_code_is_mfa_required(
    client: httpx.AsyncClient, state: SandboxState
) -> None:
    body = login_body(state)
    del body["mfa_code"]

    response = await client.post("/authenticate", json=body)

    assert response.status_code == 401
    assert response.json() == {"error": "mfa_required"}


async def test_wrong_mfa_code_is_refused(
    client: httpx.AsyncClient, state: SandboxState, clock: ManualClock
) -> None:
    stale = totp(state.default_user.totp_secret, clock())
    clock.advance(120)

    response = await client.post("/authenticate", json=login_body(state, mfa_code=stale))

    assert response.status_code == 401
    assert response.json() == {"error": "invalid_mfa_code"}


async def test_five_failures_lock_the_account_for_fifteen_minutes_even_with_the_right_login(
    client: httpx.AsyncClient, state: SandboxState, clock: ManualClock
) -> None:
    for _ in range(5):
        failed = await client.post("/authenticate", json=login_body(state, password="wrong"))
        assert failed.status_code == 401

    locked = await client.post("/authenticate", json=login_body(state))
    assert locked.status_code == 403
    assert locked.json() == {"error": "account_locked"}

    clock.advance(14 * 60 + 59)
    still = await client.post("/authenticate", json=login_body(state))
    assert still.json() == {"error": "account_locked"}

    clock.advance(1)
    unlocked = await client.post("/authenticate", json=login_body(state))
    assert unlocked.status_code == 200


async def test_a_success_resets_the_failure_count(
    client: httpx.AsyncClient, state: SandboxState
) -> None:
    for _ in range(4):
        await client.post("/authenticate", json=login_body(state, password="wrong"))
    assert (await client.post("/authenticate", json=login_body(state))).status_code == 200
    for _ in range(4):
        await client.post("/authenticate", json=login_body(state, password="wrong"))

    assert (await client.post("/authenticate", json=login_body(state))).status_code == 200


async def test_sessions_expire_after_fifteen_minutes(
    api: httpx.AsyncClient, clock: ManualClock
) -> None:
    assert (await api.get("/providers")).status_code == 200
    clock.advance(900)

    response = await api.get("/providers")

    assert response.status_code == 401
    assert response.json() == {"error": "session_expired"}


async def test_missing_or_unknown_session_is_invalid_session(client: httpx.AsyncClient) -> None:
    missing = await client.get("/patients")
    unknown = await client.get("/patients", headers={"Authorization": "Bearer nope"})

    assert missing.status_code == unknown.status_code == 401
    assert missing.json() == unknown.json() == {"error": "invalid_session"}


async def test_refresh_issues_a_new_session_and_a_new_refresh_token_and_the_old_one_dies(
    client: httpx.AsyncClient, state: SandboxState, clock: ManualClock
) -> None:
    first = (await client.post("/authenticate", json=login_body(state))).json()
    clock.advance(1000)

    refreshed = await client.post(
        "/authenticate",
        json={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
    )
    again = await client.post(
        "/authenticate",
        json={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
    )

    assert refreshed.status_code == 200
    body = refreshed.json()
    assert body["session_token"] != first["session_token"]
    assert body["refresh_token"] != first["refresh_token"]
    headers = {"Authorization": f"Bearer {body['session_token']}"}
    assert (await client.get("/locations", headers=headers)).status_code == 200
    assert again.status_code == 401
    assert again.json() == {"error": "invalid_refresh_token"}


async def test_refresh_tokens_die_after_twelve_hours(
    client: httpx.AsyncClient, state: SandboxState, clock: ManualClock
) -> None:
    first = (await client.post("/authenticate", json=login_body(state))).json()
    clock.advance(12 * 3600)

    response = await client.post(
        "/authenticate",
        json={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
    )

    assert response.json() == {"error": "invalid_refresh_token"}


async def test_the_request_log_never_holds_the_login_body(
    client: httpx.AsyncClient, state: SandboxState
) -> None:
    await client.post("/authenticate", json=login_body(state))

    entry = state.request_log[-1]
    assert entry.endpoint == "authenticate"
    assert entry.username == state.default_user.username
    assert state.default_user.password not in repr(entry)


async def test_a_strict_sandbox_refuses_a_code_a_login_already_used(
    client: httpx.AsyncClient, state: SandboxState, clock: ManualClock
) -> None:
    state.single_use_codes = True
    body = login_body(state)

    first = await client.post("/authenticate", json=body)
    replayed = await client.post("/authenticate", json=body)
    clock.advance(30)
    fresh = await client.post("/authenticate", json=login_body(state))

    assert first.status_code == 200
    assert replayed.json() == {"error": "invalid_mfa_code"}
    assert fresh.status_code == 200


async def test_codes_may_be_reused_by_default(
    client: httpx.AsyncClient, state: SandboxState
) -> None:
    body = login_body(state)

    assert (await client.post("/authenticate", json=body)).status_code == 200
    assert (await client.post("/authenticate", json=body)).status_code == 200
