"""Serving several tenants from one process: `/{tenant}/...` goes to that tenant's own facade
app (its runtime, database, key and vendor), built at start-up or on its first request after
`facade tenant add`; anything else to a small root app (a landing page and liveness).

The registry is read on every request, so a tenant disabled by `facade tenant disable` (in
any process) is refused at once. An unknown, disabled or malformed tenant name gets the same
404 as any address facade does not serve: whether a practice is served here is not told.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from contextlib import AsyncExitStack

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from facade.errors import FacadeError, ResourceNotFound, operation_outcome
from facade.rest.responses import FhirResponse
from facade.settings import Settings
from facade.tenants import Tenant, TenantRegistry, tenant_settings

log = logging.getLogger("facade")

#: Makes a tenant's app from its settings (the CLI's create_app with its announcements).
AppFactory = Callable[[Settings, Tenant], FastAPI]


class TenantRouter:
    def __init__(self, settings: Settings, registry: TenantRegistry, factory: AppFactory):
        self._settings = settings
        self._registry = registry
        self._factory = factory
        self._apps: dict[str, FastAPI] = {}
        self._building = asyncio.Lock()
        self._stack = AsyncExitStack()
        self.root = _root_app()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        name = scope["path"].lstrip("/").split("/", 1)[0]
        tenant = self._registry.get(name) if name else None
        if tenant is None or not tenant.active:
            await self.root(scope, receive, send)
            return
        try:
            app = await self._app(tenant)
        except Exception as error:  # its runtime could not be built: the others still serve
            log.error("tenant %s cannot be served: %s", tenant.name, type(error).__name__)
            unavailable = FacadeError("This practice cannot be served now.")
            unavailable.status = 503
            await FhirResponse(operation_outcome(unavailable), status_code=503)(
                scope, receive, send
            )
            return
        prefix = f"/{tenant.name}"
        await app({**scope, "root_path": scope.get("root_path", "") + prefix}, receive, send)

    async def _app(self, tenant: Tenant) -> ASGIApp:
        app = self._apps.get(tenant.name)
        if app is not None:
            return app
        async with self._building:
            if tenant.name not in self._apps:
                app = self._factory(tenant_settings(self._settings, tenant), tenant)
                # The tenant's runtime is built, and its workers started, by its own lifespan.
                await self._stack.enter_async_context(app.router.lifespan_context(app))
                self._apps[tenant.name] = app
                log.info("serving tenant %s", tenant.name)
            return self._apps[tenant.name]

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        message = await receive()
        assert message["type"] == "lifespan.startup"
        try:
            for tenant in self._registry.all():
                if tenant.active:
                    await self._app(tenant)
        except BaseException:
            log.exception("a tenant could not start")
            await self._stack.aclose()
            await send({"type": "lifespan.startup.failed", "message": "a tenant failed"})
            return
        await send({"type": "lifespan.startup.complete"})
        message = await receive()
        assert message["type"] == "lifespan.shutdown"
        await self._stack.aclose()
        await send({"type": "lifespan.shutdown.complete"})


def _root_app() -> ASGIApp:
    root = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    @root.get("/")
    async def landing() -> Response:
        return HTMLResponse(
            "<!doctype html><title>facade</title><h1>facade</h1><p>This server serves "
            "several practices, each at its own FHIR base: <code>/PRACTICE/fhir</code>. "
            "Ask the practice for its address.</p>",
            headers={"Content-Security-Policy": "default-src 'none'", "X-Frame-Options": "DENY"},
        )

    @root.get("/health/live")
    async def live() -> Response:
        return JSONResponse({"status": "ok"})

    async def nothing_here(request: Request, exc: Exception) -> Response:
        error = ResourceNotFound("There is nothing at this address.")
        return FhirResponse(operation_outcome(error), status_code=404)

    root.add_exception_handler(404, nothing_here)
    root.add_exception_handler(405, nothing_here)
    return root
