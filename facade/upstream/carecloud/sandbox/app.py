"""The CareCloud sandbox as an ASGI app: `POST /authenticate`, then every other call through one
pipeline (faults, session check, the user's hourly budget, request log) before its handler.

It answers only what the wire contract in the lead's plan describes, always with
`{"error": ...}` bodies, and keeps all its memory in the `SandboxState` it is given.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Awaitable, Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from facade.upstream.carecloud.sandbox import endpoints
from facade.upstream.carecloud.sandbox.params import BadRequest
from facade.upstream.carecloud.sandbox.state import Fault, RequestLogEntry, SandboxState

Handler = Callable[[SandboxState, Request, str], Awaitable[Response]]
Endpoint = Callable[[Request], Awaitable[Response]]

#: Seconds an injected 429 asks the client to wait.
INJECTED_THROTTLE_SECONDS = 1


def create_sandbox_app(state: SandboxState) -> Starlette:
    """Build the sandbox; all its memory is `state`, which tests keep a handle on."""
    api = _Pipeline(state)
    e = endpoints
    routes = [
        Route("/authenticate", _authenticate(state), methods=["POST"]),
        Route("/authorization", api.wrap("authorization", e.authorization), methods=["GET"]),
        Route("/patients", api.wrap("patients", e.patients), methods=["GET"]),
        Route("/patients/{id}", api.wrap("patients.detail", e.patient), methods=["GET"]),
        Route("/patients/{id}/ccda", api.wrap("patients.ccda", e.ccda), methods=["GET"]),
        Route("/appointments", api.wrap("appointments", e.appointments), methods=["GET"]),
        Route(
            "/appointments/{id}", api.wrap("appointments.detail", e.appointment), methods=["GET"]
        ),
        Route(
            "/create_appointment",
            api.wrap("create_appointment", e.create_appointment),
            methods=["POST"],
        ),
        Route("/encounters", api.wrap("encounters", e.encounters), methods=["GET"]),
        Route("/encounters/{id}", api.wrap("encounters.detail", e.encounter), methods=["GET"]),
        Route("/eligibility", api.wrap("eligibility", e.eligibility), methods=["GET"]),
        Route("/providers", api.wrap("providers", e.providers), methods=["GET"]),
        Route("/providers/{id}", api.wrap("providers.detail", e.provider), methods=["GET"]),
        Route("/locations", api.wrap("locations", e.locations), methods=["GET"]),
        Route("/locations/{id}", api.wrap("locations.detail", e.location), methods=["GET"]),
        Route("/submit_claim", api.wrap("submit_claim", e.submit_claim), methods=["POST"]),
        Route("/claims/{id}", api.wrap("claims.detail", e.claim), methods=["GET"]),
        Route("/webhooks", api.wrap("webhooks.create", e.create_webhook), methods=["POST"]),
        Route("/webhooks", api.wrap("webhooks", e.list_webhooks), methods=["GET"]),
        Route("/webhooks/{id}", api.wrap("webhooks.delete", e.delete_webhook), methods=["DELETE"]),
        Route("/{rest:path}", api.wrap(None, _not_found)),
    ]
    app = Starlette(routes=routes)
    app.router.redirect_slashes = False
    return app


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


async def _not_found(state: SandboxState, request: Request, username: str) -> Response:
    return _error(404, "Not found")


def _authenticate(state: SandboxState) -> Endpoint:
    async def run(request: Request) -> Response:
        entry = RequestLogEntry(
            method=request.method,
            path=request.url.path,
            endpoint="authenticate",
            params=dict(request.query_params),
            status=0,
            at=state.clock(),
        )
        state.request_log.append(entry)
        response = await _login(state, request, entry)
        entry.status = response.status_code
        return response

    return run


async def _login(state: SandboxState, request: Request, entry: RequestLogEntry) -> Response:
    try:
        body = json.loads(await request.body() or b"null")
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return _error(400, "Request body must be a JSON object")
    if body.get("grant_type") == "refresh_token":
        token = body.get("refresh_token")
        status, answer = state.refresh(token if isinstance(token, str) else "")
    else:
        username, password = body.get("username"), body.get("password")
        if not isinstance(username, str) or not isinstance(password, str):
            return _error(400, "username and password are required")
        entry.username = username
        code = body.get("mfa_code")
        status, answer = state.login(username, password, code if isinstance(code, str) else None)
    return JSONResponse(answer, status_code=status, headers={"Cache-Control": "no-store"})


class _Pipeline:
    """Faults, session check, budget and logging, in the order a gateway applies them."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state

    def wrap(self, endpoint: str | None, handler: Handler) -> Endpoint:
        async def run(request: Request) -> Response:
            entry = RequestLogEntry(
                method=request.method,
                path=request.url.path,
                endpoint=endpoint,
                params=dict(request.query_params),
                status=0,
                at=self.state.clock(),
            )
            self.state.request_log.append(entry)
            response = await self._answer(request, entry, handler)
            if entry.status == 0:
                entry.status = response.status_code
            return response

        return run

    async def _answer(self, request: Request, entry: RequestLogEntry, handler: Handler) -> Response:
        state = self.state
        planned = state.next_api_call()
        entry.fault = planned.fault if planned else None
        if planned and planned.fault is Fault.EXPIRE_SESSION:
            state.expire_all_sessions()

        scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not credentials.strip():
            return _error(401, "invalid_session")
        session, problem = state.session_for(credentials.strip())
        if session is None:
            return _error(401, problem or "invalid_session")
        entry.username = session.username

        wait = state.budget_wait(session.username)
        if wait is not None:
            return _error(429, "rate_limited", {"Retry-After": str(max(1, math.ceil(wait)))})
        if planned and planned.fault is Fault.THROTTLED:
            return _error(429, "rate_limited", {"Retry-After": str(INJECTED_THROTTLE_SECONDS)})
        state.charge(session.username)
        entry.counted = True

        if planned and planned.fault is Fault.SERVER_ERROR:
            return _error(500, "Internal server error")
        if planned and planned.fault is Fault.TIMEOUT:
            # Logged as the gateway timeout it becomes if the client waits that long.
            entry.status = 504
            await asyncio.sleep(planned.timeout_seconds)
            return _error(504, "Gateway timeout")
        try:
            return await handler(state, request, session.username)
        except BadRequest as problem_:
            return _error(problem_.status, str(problem_))
