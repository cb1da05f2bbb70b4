"""create_app(settings): routes, middleware and error handlers; nothing else.

This is the one place where errors become HTTP answers: facade errors become their
OperationOutcome, anything unexpected becomes a 500 that tells the client nothing internal.
Log lines carry the route, status, error code and vendor calls, never query values or PHI.
"""

from __future__ import annotations

import inspect
import logging
import time
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from facade import __version__
from facade.auth.server import router as auth_router
from facade.bulk.routes import router as bulk_router
from facade.errors import (
    FacadeError,
    InvalidRequest,
    MethodNotAllowed,
    ResourceNotFound,
    operation_outcome,
)
from facade.rest.cors import CorsPolicy
from facade.rest.fhir import router as fhir_router
from facade.rest.health import router as health_router
from facade.rest.limits import RequestLimits
from facade.rest.responses import FhirResponse
from facade.rest.site import router as site_router
from facade.rest.webhooks import router as webhooks_router
from facade.runtime import Runtime, build_runtime
from facade.settings import Settings
from facade.upstream.budget import metered

log = logging.getLogger("facade.http")


def create_app(
    settings: Settings,
    runtime: Runtime | None = None,
    *,
    on_ready: Callable[[Runtime], Awaitable[None] | None] | None = None,
    on_stop: Callable[[], None] | None = None,
    tenant: str = "",
) -> FastAPI:
    """The ASGI app. Without `runtime` it builds one at start-up from `settings`;
    `on_ready` is told once it serves (the CLI prints the URL there), `on_stop` when it
    stops (uvicorn may end the process by its signal right after)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = runtime is None
        app.state.runtime = runtime or await build_runtime(settings, tenant=tenant)
        if on_ready is not None:
            announced = on_ready(app.state.runtime)
            if inspect.isawaitable(announced):
                await announced
        exports = app.state.runtime.exports
        if exports is not None:
            await exports.worker.start()  # resumes exports a previous process left unfinished
        mirror = app.state.runtime.mirror
        if mirror is not None and app.state.runtime.settings.jobs == "queue":
            mirror.serve_only()  # a `facade worker` syncs it
        elif mirror is not None:
            await mirror.scheduler.start()  # resumes a backfill from its watermarks
        try:
            yield
        finally:
            if on_stop is not None:
                on_stop()
            if mirror is not None:
                await mirror.scheduler.stop()
            if exports is not None:
                await exports.worker.stop()
            # Every access served is in the audit log before the server is gone.
            await app.state.runtime.audit.drain()
            if owned:
                await app.state.runtime.aclose()

    app = FastAPI(
        title="facade",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.settings = settings
    app.state.started_at = datetime.now(UTC).isoformat(timespec="seconds")
    if runtime is not None:
        app.state.runtime = runtime
    app.include_router(site_router)  # /, the bare FHIR base, /openapi.json, /docs
    app.include_router(health_router)
    app.include_router(auth_router)  # before the FHIR routes: it serves /fhir/.well-known/*
    app.include_router(bulk_router, prefix="/fhir")  # before the FHIR routes: $export, Group
    app.include_router(fhir_router, prefix="/fhir")
    app.include_router(webhooks_router)  # signed by the vendor, outside SMART's /fhir

    # Added first, so it runs inside AccessLog: refusals are logged like any answer.
    app.add_middleware(
        RequestLimits,
        max_body_bytes=settings.max_body_bytes,
        max_query_bytes=settings.max_query_bytes,
    )
    app.add_middleware(AccessLog)
    # Outermost: refusals (401, 413, 429) carry CORS headers too, so a browser app can read why.
    app.add_middleware(CorsPolicy, origins=settings.cors_origin_list)

    @app.exception_handler(FacadeError)
    async def facade_error(request: Request, exc: FacadeError) -> Response:
        return _answer(request, exc)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        return _answer(request, InvalidRequest("The request is not valid."))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404:
            return _answer(request, ResourceNotFound("There is nothing at this address."))
        if exc.status_code == 405:
            return _answer(request, MethodNotAllowed())
        error = FacadeError("The request could not be handled.")
        error.status = exc.status_code
        return _answer(request, error)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        # Frames only: an exception's message may quote a vendor record.
        frames = "".join(traceback.format_list(traceback.extract_tb(exc.__traceback__)))
        log.error("unexpected %s\n%s", type(exc).__name__, frames)
        return _answer(request, FacadeError())

    return app


class AccessLog:
    """Counts the vendor calls of each request (X-Upstream-Calls), logs one line for it
    (route template, status, time, vendor calls, error code; never the query or the body)
    and queues the request's audit record when the route opened one (written in batches by
    the runtime's AuditWriter; the answer does not wait for the database)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        with metered() as meter:

            async def send_counted(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                    MutableHeaders(scope=message).append("X-Upstream-Calls", str(meter.count))
                await send(message)

            try:
                await self.app(scope, receive, send_counted)
            finally:
                route = getattr(scope.get("route"), "path", "unmatched")
                error = scope.get("state", {}).get("error_code")
                audit = scope.get("state", {}).get("audit")
                if audit is not None:
                    outcome = "success" if status < 400 else (error or f"http-{status}")
                    client = scope.get("client")
                    await scope["app"].state.runtime.audit.record(
                        audit,
                        outcome=outcome,
                        vendor_calls=meter.count,
                        source_ip=client[0] if client else "",
                    )
                log.info(
                    "%s %s -> %s in %.1f ms, %d vendor calls%s",
                    scope["method"],
                    route,
                    status,
                    (time.perf_counter() - started) * 1000,
                    meter.count,
                    f", error {error}" if error else "",
                )


def _answer(request: Request, error: FacadeError) -> Response:
    request.state.error_code = error.code
    return FhirResponse(operation_outcome(error), status_code=error.status, headers=error.headers)
