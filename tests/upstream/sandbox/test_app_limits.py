"""Quota (hourly and burst) and injected faults, driven by a hand-moved clock."""

from __future__ import annotations

import asyncio

import pytest

from facade.upstream.drchrono.sandbox.state import Fault, SandboxLimits
from tests.upstream.sandbox.app_harness import make_state, sandbox_client


async def test_hourly_budget_throttles_until_the_top_of_the_hour() -> None:
    state, clock = make_state(limits=SandboxLimits(hourly_limit=3, burst_per_second=None))
    clock.advance(59 * 60 + 57)  # 10:59:57
    async with sandbox_client(state) as client:
        allowed = [(await client.get("/api/doctors")).status_code for _ in range(3)]
        throttled = await client.get("/api/doctors")
        clock.advance(3)  # 11:00:00, a new hour
        after_reset = await client.get("/api/doctors")
    assert allowed == [200, 200, 200]
    assert throttled.status_code == 429
    assert throttled.json() == {
        "detail": "Request was throttled. Expected available in 3.0 seconds."
    }
    assert throttled.headers["retry-after"] == "3"
    assert after_reset.status_code == 200


async def test_throttled_and_unauthenticated_calls_do_not_spend_the_budget() -> None:
    state, _ = make_state(limits=SandboxLimits(hourly_limit=1, burst_per_second=None))
    async with sandbox_client(state) as client:
        await client.get("/api/doctors")
        await client.get("/api/doctors")
    async with sandbox_client(state, authorized=False) as anonymous:
        await anonymous.get("/api/doctors")
    assert [(e.status, e.counted) for e in state.api_requests()] == [
        (200, True),
        (429, False),
        (401, False),
    ]


async def test_budget_is_per_app() -> None:
    state, _ = make_state(limits=SandboxLimits(hourly_limit=1, burst_per_second=None))
    async with sandbox_client(state) as client:
        assert (await client.get("/api/doctors")).status_code == 200
    other = state.issue_tokens(client_id="other-app")
    async with sandbox_client(state, authorized=False) as client:
        response = await client.get(
            "/api/doctors", headers={"Authorization": f"Bearer {other.access_token}"}
        )
    assert response.status_code == 200


async def test_burst_limit_is_ten_calls_per_second() -> None:
    state, clock = make_state(limits=SandboxLimits())
    async with sandbox_client(state) as client:
        statuses = []
        for _ in range(10):
            statuses.append((await client.get("/api/doctors")).status_code)
            clock.advance(0.05)
        burst = await client.get("/api/doctors")  # 0.5 s after the first call
        clock.advance(0.5)
        later = await client.get("/api/doctors")
    assert statuses == [200] * 10
    assert burst.status_code == 429
    assert burst.json() == {"detail": "Request was throttled. Expected available in 1.0 seconds."}
    assert later.status_code == 200


async def test_burst_limit_can_be_disabled() -> None:
    state, _ = make_state(limits=SandboxLimits(burst_per_second=None))
    async with sandbox_client(state) as client:
        statuses = {(await client.get("/api/doctors")).status_code for _ in range(25)}
    assert statuses == {200}


@pytest.mark.parametrize(("fault", "status"), [(Fault.SERVER_ERROR, 500), (Fault.THROTTLED, 429)])
async def test_fault_hits_exactly_the_planned_call(fault: Fault, status: int) -> None:
    state, _ = make_state()
    async with sandbox_client(state) as client:
        await client.get("/api/doctors")  # before the plan: not counted towards it
        state.fail_call(2, fault)
        statuses = [(await client.get("/api/doctors")).status_code for _ in range(3)]
    assert statuses == [200, status, 200]
    assert state.api_requests()[2].fault is fault


async def test_injected_429_has_the_drf_body() -> None:
    state, _ = make_state()
    state.fail_next(1, "429")
    async with sandbox_client(state) as client:
        response = await client.get("/api/doctors")
    assert response.status_code == 429
    assert response.json()["detail"].startswith("Request was throttled. Expected available in ")
    assert "retry-after" in response.headers


async def test_fail_next_fails_several_calls_in_a_row() -> None:
    state, _ = make_state()
    state.fail_next(2, Fault.SERVER_ERROR)
    async with sandbox_client(state) as client:
        statuses = [(await client.get("/api/doctors")).status_code for _ in range(3)]
    assert statuses == [500, 500, 200]


async def test_timeout_fault_outlasts_a_client_with_a_shorter_timeout() -> None:
    state, _ = make_state()
    state.fail_next(1, Fault.TIMEOUT, timeout_seconds=5)
    async with sandbox_client(state) as client:
        with pytest.raises(TimeoutError):
            # ASGITransport does not enforce httpx timeouts, so the caller's own deadline does.
            async with asyncio.timeout(0.05):
                await client.get("/api/doctors")
        after = await client.get("/api/doctors")
    assert after.status_code == 200
    assert state.api_requests()[0].fault is Fault.TIMEOUT


async def test_expire_token_fault_revokes_access_tokens_but_refresh_still_works() -> None:
    state, _ = make_state()
    tokens = state.issue_tokens()
    bearer = {"Authorization": f"Bearer {tokens.access_token}"}
    state.fail_call(1, Fault.EXPIRE_TOKEN)
    async with sandbox_client(state, authorized=False) as client:
        first = await client.get("/api/doctors", headers=bearer)
        second = await client.get("/api/doctors", headers=bearer)
        refreshed = await client.post(
            "/o/token/",
            data={
                "grant_type": "refresh_token",
                "client_id": "facade-sandbox",
                "client_secret": "s3cret",
                "refresh_token": tokens.refresh_token,
            },
        )
        new_bearer = {"Authorization": f"Bearer {refreshed.json()['access_token']}"}
        third = await client.get("/api/doctors", headers=new_bearer)
    assert first.status_code == 401
    assert first.json() == {"detail": "Invalid token."}
    assert second.status_code == 401  # the token stays revoked: the client must refresh
    assert third.status_code == 200


async def test_faults_can_be_cleared() -> None:
    state, _ = make_state()
    state.fail_next(3, Fault.SERVER_ERROR)
    state.clear_faults()
    async with sandbox_client(state) as client:
        response = await client.get("/api/doctors")
    assert response.status_code == 200
