"""The per-user hourly budget (429 with a delta-seconds Retry-After, our invention) and the
fault plan: the Nth call answers 500, 429, a gateway timeout, or finds its session expired.
"""

from __future__ import annotations

import copy

import httpx
import pytest

from facade.upstream.carecloud.sandbox.app import create_sandbox_app
from facade.upstream.carecloud.sandbox.dataset import CareCloudDataset
from facade.upstream.carecloud.sandbox.state import Fault, ManualClock, SandboxState
from tests.upstream.carecloud.conftest import BASE_URL, SEED


async def test_the_budget_is_per_user_per_rolling_hour(
    generated: CareCloudDataset, clock: ManualClock
) -> None:
    state = SandboxState.create(copy.deepcopy(generated), seed=SEED, clock=clock, hourly_budget=3)
    headers = {"Authorization": f"Bearer {state.issue_session()['session_token']}"}
    transport = httpx.ASGITransport(app=create_sandbox_app(state))
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL, headers=headers) as api:
        for _ in range(3):
            assert (await api.get("/providers")).status_code == 200
            clock.advance(200)

        refused = await api.get("/providers")

        assert refused.status_code == 429
        assert refused.json() == {"error": "rate_limited"}
        assert refused.headers["Retry-After"] == "3000"
        assert not state.request_log[-1].counted
        clock.advance(3000)
        api.headers["Authorization"] = f"Bearer {state.issue_session()['session_token']}"
        assert (await api.get("/providers")).status_code == 200
        assert (await api.get("/providers")).status_code == 429


async def test_the_nth_call_fails_with_a_500(api: httpx.AsyncClient, state: SandboxState) -> None:
    state.fail_call(2, Fault.SERVER_ERROR)

    first = await api.get("/providers")
    second = await api.get("/providers")
    third = await api.get("/providers")

    assert (first.status_code, second.status_code, third.status_code) == (200, 500, 200)
    assert second.json() == {"error": "Internal server error"}
    assert state.api_requests()[-2].fault is Fault.SERVER_ERROR


async def test_an_injected_429_says_when_to_retry(
    api: httpx.AsyncClient, state: SandboxState
) -> None:
    state.fail_next(1, "429")

    response = await api.get("/locations")

    assert response.status_code == 429
    assert response.headers["Retry-After"] == "1"
    assert response.json() == {"error": "rate_limited"}


async def test_an_injected_timeout_ends_as_a_504(
    api: httpx.AsyncClient, state: SandboxState
) -> None:
    state.fail_next(1, Fault.TIMEOUT, timeout_seconds=0.01)

    response = await api.get("/locations")

    assert response.status_code == 504
    assert state.api_requests()[-1].status == 504


@pytest.mark.parametrize("name", ["expire_session", "expire_token"])
async def test_an_expired_session_fault_answers_session_expired(
    api: httpx.AsyncClient, state: SandboxState, name: str
) -> None:
    state.fail_next(1, name)

    response = await api.get("/patients")

    assert response.status_code == 401
    assert response.json() == {"error": "session_expired"}
    assert state.api_requests()[-1].fault is Fault.EXPIRE_SESSION


async def test_logins_do_not_count_as_api_calls_for_faults(
    client: httpx.AsyncClient, state: SandboxState
) -> None:
    from tests.upstream.carecloud.conftest import login_body

    state.fail_call(1, Fault.SERVER_ERROR)
    login = await client.post("/authenticate", json=login_body(state))
    token = login.json()["session_token"]

    response = await client.get("/providers", headers={"Authorization": f"Bearer {token}"})

    assert login.status_code == 200
    assert response.status_code == 500


def test_nth_counts_from_one() -> None:
    with pytest.raises(ValueError):
        SandboxState(dataset=None).fail_call(0, Fault.SERVER_ERROR)  # type: ignore[arg-type]
