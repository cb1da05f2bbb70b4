"""Liveness and readiness for operators and orchestrators, without a token: /health/live (the
process answers; no I/O), /health/ready (database and vendor; 503 with what is not ready) and
/health (the same, with version and the vendor call budget). Bodies follow the
application/health+json draft and never carry a URL, a credential or a patient's data.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from capability.openapi import HEALTH_JSON
from facade import __version__
from facade.readiness import Check
from facade.runtime import Runtime

router = APIRouter()

#: An orchestrator must see the state of now, never a cached one.
NO_STORE = {"Cache-Control": "no-store"}


def _answer(body: dict[str, Any], status: int = 200) -> Response:
    return Response(orjson.dumps(body), status, headers=NO_STORE, media_type=HEALTH_JSON)


async def _readiness(request: Request) -> tuple[dict[str, Any], int]:
    runtime: Runtime = request.app.state.runtime
    checks = await runtime.readiness.checks()
    body: dict[str, Any] = {
        "status": _overall(checks),
        "checks": {name: check.as_json() for name, check in checks.items()},
    }
    failing = [f"{name}: {check.output}" for name, check in checks.items() if not check.ok]
    if failing:
        body["output"] = "Not ready. " + " ".join(failing)
    return body, 503 if failing else 200


def _overall(checks: dict[str, Check]) -> str:
    statuses = {check.status for check in checks.values()}
    return next(s for s in ("fail", "warn", "pass") if s in statuses or s == "pass")


@router.get("/health/live")
async def live() -> Response:
    return _answer({"status": "pass"})


@router.get("/health/ready")
async def ready(request: Request) -> Response:
    body, status = await _readiness(request)
    return _answer(body, status)


@router.get("/health")
async def summary(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    body, status = await _readiness(request)
    budget = runtime.client.budget
    body.update(
        version=__version__,
        started=request.app.state.started_at,
        fhirBase=runtime.settings.base_url,
        vendorBudget={
            "hourlyLimit": budget.hourly_limit,
            "remaining": budget.remaining,
            "resetsInSeconds": int(budget.seconds_until_reset()),
            "readinessProbes": runtime.readiness.probes,
        },
    )
    return _answer(body, status)
