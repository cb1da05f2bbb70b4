"""Liveness and readiness (facade/rest/health.py, facade/readiness.py) through the real app:
ready when the database and the EHR answer, 503 saying which does not, the EHR probed at
most once per VENDOR_PROBE_SECONDS, and nothing an anonymous caller should not see."""

from __future__ import annotations

import httpx
import pytest

from facade.clock import FakeClock
from facade.readiness import VENDOR_PROBE_SECONDS
from facade.runtime import Runtime
from facade.store.database import Database
from facade.upstream.drchrono.sandbox.state import SandboxState
from tests.store.test_database import POSTGRES_SERVER_URL

#: A database that really is down: nothing listens on port 1. The password must not leak.
DOWN_DATABASE = "postgresql+psycopg://facade:hunter2-db-password@127.0.0.1:1/facade"


@pytest.fixture
async def anonymous(fhir: httpx.AsyncClient) -> httpx.AsyncClient:
    fhir.auth = None  # type: ignore[assignment]
    return fhir


def vendor_calls(answer: httpx.Response) -> int:
    return int(answer.headers["x-upstream-calls"])


async def test_live_answers_without_touching_anything(anonymous: httpx.AsyncClient) -> None:
    answer = await anonymous.get("/health/live")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/health+json")
    assert answer.json() == {"status": "pass"}
    assert vendor_calls(answer) == 0


async def test_ready_checks_the_database_and_the_vendor(anonymous: httpx.AsyncClient) -> None:
    answer = await anonymous.get("/health/ready")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["status"] == "pass"
    assert body["checks"]["database"]["status"] == "pass"
    assert body["checks"]["vendor"]["status"] == "pass"
    assert vendor_calls(answer) == 1
    assert answer.headers["cache-control"] == "no-store"


async def test_the_vendor_is_probed_at_most_once_per_period(
    anonymous: httpx.AsyncClient, runtime: Runtime, clock: FakeClock
) -> None:
    spent = [vendor_calls(await anonymous.get("/health/ready")) for _ in range(20)]
    assert spent == [1] + [0] * 19
    clock.advance(VENDOR_PROBE_SECONDS - 1)
    assert vendor_calls(await anonymous.get("/health")) == 0
    clock.advance(2)
    assert vendor_calls(await anonymous.get("/health/ready")) == 1
    assert runtime.readiness.probes == 2
    # The figure the README gives: at most 3600 / VENDOR_PROBE_SECONDS calls an hour.
    assert 3600 / VENDOR_PROBE_SECONDS <= 12


async def test_an_unreachable_vendor_is_not_ready(
    anonymous: httpx.AsyncClient, sandbox: SandboxState
) -> None:
    sandbox.fail_next(10, "500")  # every attempt, retries included
    answer = await anonymous.get("/health/ready")
    assert answer.status_code == 503
    body = answer.json()
    assert body["status"] == "fail"
    assert body["checks"]["database"]["status"] == "pass"
    assert body["checks"]["vendor"]["status"] == "fail"
    assert "EHR" in body["checks"]["vendor"]["output"]
    assert body["output"].startswith("Not ready. vendor:")
    summary = await anonymous.get("/health")
    assert summary.status_code == 503
    assert vendor_calls(summary) == 0, "the failed probe's result stands for its period too"


async def test_a_vendor_that_revoked_facade_says_to_reconnect(
    anonymous: httpx.AsyncClient, sandbox: SandboxState
) -> None:
    sandbox.refresh_tokens.clear()  # the practice revoked facade's app
    sandbox.fail_next(1, "expire_token")
    answer = await anonymous.get("/health/ready")
    assert answer.status_code == 503
    assert "facade connect" in answer.json()["checks"]["vendor"]["output"]


async def test_a_database_that_is_down_is_not_ready_and_not_named(
    anonymous: httpx.AsyncClient, runtime: Runtime
) -> None:
    working = runtime.readiness.database
    runtime.readiness.database = Database(DOWN_DATABASE)
    try:
        for path in ("/health/ready", "/health"):
            answer = await anonymous.get(path)
            assert answer.status_code == 503
            body = answer.json()
            assert body["checks"]["database"] == {
                "status": "fail",
                "output": "The database does not answer.",
                "time": body["checks"]["database"]["time"],
            }
            assert body["checks"]["vendor"]["status"] == "pass"
            for leak in ("hunter2", "127.0.0.1:1", "postgresql", "psycopg"):
                assert leak not in answer.text
        assert (await anonymous.get("/health/live")).status_code == 200
    finally:
        runtime.readiness.database.dispose()
        runtime.readiness.database = working
    assert (await anonymous.get("/health/ready")).status_code == 200


@pytest.mark.postgres
async def test_a_postgresql_database_that_answers_is_ready(
    anonymous: httpx.AsyncClient, runtime: Runtime
) -> None:
    working = runtime.readiness.database
    runtime.readiness.database = Database(POSTGRES_SERVER_URL)
    try:
        answer = await anonymous.get("/health/ready")
    finally:
        runtime.readiness.database.dispose()
        runtime.readiness.database = working
    assert answer.status_code == 200, answer.text
    assert answer.json()["checks"]["database"]["status"] == "pass"


async def test_a_spent_hourly_budget_warns_but_stays_ready(
    anonymous: httpx.AsyncClient, runtime: Runtime
) -> None:
    budget = runtime.client.budget
    while budget.remaining:
        await budget.acquire(0)
    answer = await anonymous.get("/health/ready")
    assert answer.status_code == 200
    body = answer.json()
    assert body["status"] == "warn"
    assert body["checks"]["vendor"]["status"] == "warn"
    assert "budget" in body["checks"]["vendor"]["output"]
    assert vendor_calls(answer) == 0


async def test_the_summary_adds_version_and_budget_and_no_secret(
    anonymous: httpx.AsyncClient, runtime: Runtime
) -> None:
    answer = await anonymous.get("/health")
    assert answer.status_code == 200
    body = answer.json()
    assert body["status"] == "pass" and body["version"]
    assert body["fhirBase"] == runtime.settings.base_url
    assert body["vendorBudget"]["hourlyLimit"] == runtime.settings.upstream_hourly_limit
    assert body["vendorBudget"]["readinessProbes"] == 1
    credentials = runtime.client._keeper.load()  # what must never show
    for secret in (
        credentials.access_token,
        credentials.refresh_token,
        credentials.client_secret,
        credentials.client_id,
        runtime.settings.resolved_database_url,
    ):
        assert secret not in answer.text
