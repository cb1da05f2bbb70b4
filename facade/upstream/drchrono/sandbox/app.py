"""The DrChrono v4 sandbox as an ASGI app: OAuth, /api list and detail, C-CDA, signed files,
and /sandbox/webhook, which stands in for the vendor's page where an app sets up its webhook.

Every /api call goes through one pipeline (faults, bearer check, quota, request log) before its
handler runs. It must never answer differently from the vendor's contract
(shared/seeds/drchrono-v4-api-reference.txt) and never create state outside `SandboxState`.
"""

from __future__ import annotations

import asyncio
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable
from datetime import date
from functools import partial

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from facade.upstream.drchrono.sandbox import oauth
from facade.upstream.drchrono.sandbox.admin import configure_webhook, ping_webhook
from facade.upstream.drchrono.sandbox.ccda import build_ccd
from facade.upstream.drchrono.sandbox.dataset import ENDPOINTS
from facade.upstream.drchrono.sandbox.endpoints import ENDPOINT_SPECS, EndpointSpec, HiddenUnless
from facade.upstream.drchrono.sandbox.files import serve_file
from facade.upstream.drchrono.sandbox.filters import (
    FilterError,
    Lookup,
    parse_date,
    parse_date_range,
)
from facade.upstream.drchrono.sandbox.limits import retry_after, throttled_detail
from facade.upstream.drchrono.sandbox.paging import (
    Cursor,
    InvalidCursor,
    SortedRecords,
    page_of,
    page_size_from,
    sort_records,
)
from facade.upstream.drchrono.sandbox.rendering import is_true, render_record
from facade.upstream.drchrono.sandbox.state import Fault, RequestLogEntry, SandboxState

Handler = Callable[[Request], Awaitable[Response]]

NOT_FOUND = {"detail": "Not found."}
#: What Django shows for an unhandled exception with DEBUG off.
SERVER_ERROR_PAGE = "<h1>Server Error (500)</h1>"
INJECTED_THROTTLE_SECONDS = 1.0


def create_sandbox_app(state: SandboxState) -> Starlette:
    """Build the sandbox; all its memory is `state`, which tests keep a handle on."""
    api = _ApiPipeline(state)
    handlers = _Handlers(state)

    def logged(
        endpoint: str, handler: Callable[[SandboxState, Request], Awaitable[Response]]
    ) -> Handler:
        async def run(request: Request) -> Response:
            response = await handler(state, request)
            state.request_log.append(
                RequestLogEntry(
                    method=request.method,
                    path=request.url.path,
                    endpoint=endpoint,
                    query=dict(request.query_params),
                    status=response.status_code,
                    verbose=False,
                    counted=False,
                    at=state.clock(),
                )
            )
            return response

        return run

    routes = [
        Route("/o/authorize", logged("oauth.authorize", oauth.authorize), methods=["GET"]),
        Route("/o/authorize/", logged("oauth.authorize", oauth.authorize), methods=["GET"]),
        Route("/o/token/", logged("oauth.token", oauth.token), methods=["POST"]),
        Route("/o/revoke_token/", logged("oauth.revoke", oauth.revoke_token), methods=["POST"]),
        Route("/files/{path:path}", logged("files", serve_file), methods=["GET"]),
        Route("/sandbox/webhook", logged("sandbox.webhook", configure_webhook), methods=["POST"]),
        Route("/sandbox/usage", partial(api_usage, state), methods=["GET"]),
        Route(
            "/sandbox/webhook/ping", logged("sandbox.webhook.ping", ping_webhook), methods=["POST"]
        ),
        Route(
            "/api/users/current", api.wrap("users.current", handlers.current_user), methods=["GET"]
        ),
        Route(
            "/api/patients/{record_id}/ccda",
            api.wrap("patients.ccda", handlers.ccda),
            methods=["GET"],
        ),
        Route("/api/{name}", api.wrap(_endpoint_name, handlers.list_records), methods=["GET"]),
        Route(
            "/api/{name}/{record_id}", api.wrap(_endpoint_name, handlers.detail), methods=["GET"]
        ),
        Route("/api/{rest:path}", api.wrap(None, handlers.not_found)),
    ]
    app = Starlette(routes=routes)
    # Django does not redirect POST /o/token to /o/token/; it answers 404.
    app.router.redirect_slashes = False
    return app


def _endpoint_name(request: Request) -> str | None:
    name = str(request.path_params.get("name", ""))
    return name if name in ENDPOINTS else None


def _json(body: object, status: int = 200) -> JSONResponse:
    return JSONResponse(body, status_code=status)


def _throttled(wait_seconds: float) -> JSONResponse:
    return JSONResponse(
        {"detail": throttled_detail(wait_seconds)},
        status_code=429,
        headers={"Retry-After": retry_after(wait_seconds)},
    )


def _unauthorized(detail: str) -> JSONResponse:
    return JSONResponse(
        {"detail": detail}, status_code=401, headers={"WWW-Authenticate": 'Bearer realm="api"'}
    )


class _ApiPipeline:
    """Faults, authentication, throttling and logging, in the order DRF applies them."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state

    def wrap(
        self, endpoint: str | None | Callable[[Request], str | None], handler: Handler
    ) -> Handler:
        async def run(request: Request) -> Response:
            delay = self.state.network_delay()
            if delay:
                await asyncio.sleep(delay)
            name = endpoint(request) if callable(endpoint) else endpoint
            entry = RequestLogEntry(
                method=request.method,
                path=request.url.path,
                endpoint=name,
                query=dict(request.query_params),
                status=0,
                verbose=is_true(request.query_params.get("verbose")),
                counted=False,
                at=self.state.clock(),
            )
            self.state.request_log.append(entry)
            response = await self._answer(request, entry, handler)
            entry.status = response.status_code
            return response

        return run

    async def _answer(self, request: Request, entry: RequestLogEntry, handler: Handler) -> Response:
        state = self.state
        planned = state.next_api_call()
        entry.fault = planned.fault if planned else None
        if planned and planned.fault is Fault.EXPIRE_TOKEN:
            state.expire_all_access_tokens()

        header = request.headers.get("authorization", "")
        scheme, _, credentials = header.partition(" ")
        if scheme.lower() != "bearer" or not credentials.strip():
            return _unauthorized("Authentication credentials were not provided.")
        token = state.valid_access_token(credentials.strip())
        if token is None:
            return _unauthorized("Invalid token.")
        entry.client_id = token.client_id

        now = state.clock()
        wait = state.throttle.wait(token.client_id, now)
        if wait is not None:
            return _throttled(wait)
        if planned and planned.fault is Fault.THROTTLED:
            return _throttled(INJECTED_THROTTLE_SECONDS)
        state.throttle.charge(token.client_id, now)
        entry.counted = True

        if planned and planned.fault is Fault.SERVER_ERROR:
            return HTMLResponse(SERVER_ERROR_PAGE, status_code=500)
        if planned and planned.fault is Fault.TIMEOUT:
            # Logged as the gateway timeout it becomes if the client waits that long.
            entry.status = 504
            await asyncio.sleep(planned.timeout_seconds)
            return HTMLResponse("<h1>504 Gateway Time-out</h1>", status_code=504)
        return await handler(request)


def _hidden_shown(rule: HiddenUnless, raw: str | None) -> bool:
    if rule.present_is_enough:
        return raw is not None and raw.strip().lower() not in ("false", "0")
    return is_true(raw)


class _Handlers:
    def __init__(self, state: SandboxState) -> None:
        self.state = state
        #: Listings being paged: the first page (no cursor) filters and sorts the endpoint;
        #: the next pages of the same query find their place by binary search, as a database
        #: index would, instead of filtering and sorting the whole endpoint again per page.
        self._listings: OrderedDict[tuple[object, ...], SortedRecords] = OrderedDict()

    async def not_found(self, request: Request) -> Response:
        return _json(NOT_FOUND, 404)

    async def current_user(self, request: Request) -> Response:
        base = str(request.base_url).rstrip("/")
        location = f"{base}/api/users/{self.state.dataset.current_user_id}"
        return RedirectResponse(location, status_code=302)

    async def list_records(self, request: Request) -> Response:
        name = _endpoint_name(request)
        if name is None:
            return _json(NOT_FOUND, 404)
        spec = ENDPOINT_SPECS[name]
        params = dict(request.query_params)
        if spec.requires_one_of and not any(params.get(p) for p in spec.requires_one_of):
            wanted = ", ".join(spec.requires_one_of)
            return _json(
                {"detail": f"One of the following query parameters is required: {wanted}."}, 400
            )
        try:
            cursor = Cursor.decode(params["cursor"]) if params.get("cursor") else None
            listing = self._listing(name, spec, params, fresh=cursor is None)
            verbose = is_true(params.get("verbose"))
            default, maximum = spec.page_size_bounds(self.state.limits, verbose)
            size = page_size_from(params.get("page_size"), default, maximum)
            page = page_of(listing, cursor, size)
        except FilterError as error:
            return _json(error.body, 400)
        except InvalidCursor:
            return _json({"detail": "Invalid cursor"}, 404)
        base = str(request.base_url)

        def link(next_cursor: Cursor | None) -> str | None:
            if next_cursor is None:
                return None
            return str(request.url.include_query_params(cursor=next_cursor.encode()))

        return _json(
            {
                "previous": link(page.previous_cursor),
                "next": link(page.next_cursor),
                "results": [render_record(self.state, spec, r, params, base) for r in page.results],
            }
        )

    def _listing(
        self, name: str, spec: EndpointSpec, params: dict[str, str], *, fresh: bool
    ) -> SortedRecords:
        records = self.state.dataset.endpoint(name)
        query = tuple(sorted((k, v) for k, v in params.items() if k not in ("cursor", "page_size")))
        # The list's identity and length: a replaced or grown endpoint is filtered again.
        key = (name, query, self.state.clock().date(), id(records), len(records))
        found = None if fresh else self._listings.get(key)
        if found is None:
            found = sort_records(self._filtered(name, spec, params), spec.order_by)
            self._listings[key] = found
            while len(self._listings) > 16:
                self._listings.popitem(last=False)
        return found

    def _filtered(
        self, name: str, spec: EndpointSpec, params: dict[str, str]
    ) -> list[dict[str, object]]:
        today = self.state.clock().date()
        predicates = [f.parse(params[f.param], today) for f in spec.filters if params.get(f.param)]
        hidden = [
            rule.hidden
            for rule in spec.hidden_unless
            if not _hidden_shown(rule, params.get(rule.param))
        ]
        lookup = Lookup(self.state.dataset)
        return [
            record
            for record in self.state.dataset.endpoint(name)
            if not any(rule(record) for rule in hidden)
            and all(p(record, lookup) for p in predicates)
        ]

    async def detail(self, request: Request) -> Response:
        name = _endpoint_name(request)
        record_id = str(request.path_params["record_id"])
        record = self.state.dataset.by_id(name, record_id) if name else None
        if name is None or record is None:
            return _json(NOT_FOUND, 404)
        params = dict(request.query_params)
        spec = ENDPOINT_SPECS[name]
        return _json(render_record(self.state, spec, record, params, str(request.base_url)))

    async def ccda(self, request: Request) -> Response:
        patient = self.state.dataset.by_id("patients", str(request.path_params["record_id"]))
        if patient is None:
            return _json(NOT_FOUND, 404)
        today = self.state.clock().date()
        start: date | None = None
        end: date | None = None
        try:
            if request.query_params.get("date_range"):
                start, end = parse_date_range(
                    "date_range", request.query_params["date_range"], today
                )
            elif request.query_params.get("date"):
                start = end = parse_date("date", request.query_params["date"])
        except FilterError as error:
            return _json(error.body, 400)
        xml = build_ccd(self.state.dataset, patient, start=start, end=end, now=self.state.clock())
        return Response(xml, media_type="application/xml")


async def api_usage(state: SandboxState, request: Request) -> Response:
    """What the sandbox's API has answered, by status (counts only; tests of a deployment
    of several processes read it to prove the vendor saw no 429 and no call over its quota)."""
    answers = state.api_requests()
    statuses = Counter(str(entry.status) for entry in answers)
    counted = [entry for entry in answers if entry.counted]
    # The quota is per clock hour: what each hour counted against it.
    by_hour = Counter(entry.at.strftime("%Y-%m-%dT%H") for entry in counted if entry.at)
    return JSONResponse(
        {
            "requests": len(answers),
            "counted": len(counted),
            "countedByHour": by_hour,
            "statuses": statuses,
        }
    )
