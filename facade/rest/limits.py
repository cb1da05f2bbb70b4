"""Request size limits on every route, enforced before anything parses the request.

A path or query string over its bound is answered 414, a body over its bound 413: a declared
Content-Length is judged before any byte is read, a streamed (chunked) body is counted as it
arrives and refused at the first byte too many. Pure ASGI; it never buffers a body.
"""

from __future__ import annotations

from starlette._utils import get_route_path
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from facade.errors import (
    FacadeError,
    InvalidRequest,
    PayloadTooLarge,
    UriTooLong,
    operation_outcome,
)
from facade.rest.responses import FhirResponse

#: Routes that answer errors in RFC 6749's JSON form rather than as an OperationOutcome.
OAUTH_PREFIX = "/auth/"


class _BodyTooLarge(Exception):
    """Raised from `receive` inside the app and caught here, so no route or handler in
    between can turn it into anything but the 413."""


class RequestLimits:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int, max_query_bytes: int):
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_query_bytes = max_query_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self._refusal_up_front(scope)
        if refusal is not None:
            await _answer(scope, refusal, receive, send)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise _BodyTooLarge()
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, watched_send)
        except Exception as exc:
            if started or not _only_body_too_large(exc):
                raise
            await _answer(scope, PayloadTooLarge(self.max_body_bytes), receive, send)

    def _refusal_up_front(self, scope: Scope) -> FacadeError | None:
        path = scope.get("raw_path") or scope["path"].encode()
        if len(path) > self.max_query_bytes:
            return UriTooLong("path", self.max_query_bytes)
        if len(scope.get("query_string", b"")) > self.max_query_bytes:
            return UriTooLong("query string", self.max_query_bytes)
        declared = [v for k, v in scope.get("headers", ()) if k.lower() == b"content-length"]
        if declared:
            try:
                length = int(declared[0])
            except ValueError:
                return InvalidRequest("The Content-Length header is not a number.")
            if length < 0 or len(set(declared)) > 1:
                return InvalidRequest("The Content-Length header is not valid.")
            if length > self.max_body_bytes:
                return PayloadTooLarge(self.max_body_bytes)
        return None


def _only_body_too_large(exc: BaseException) -> bool:
    """The body limit, also when a task group wrapped it in an ExceptionGroup."""
    if isinstance(exc, BaseExceptionGroup):
        return all(_only_body_too_large(inner) for inner in exc.exceptions)
    return isinstance(exc, _BodyTooLarge)


async def _answer(scope: Scope, error: FacadeError, receive: Receive, send: Send) -> None:
    scope.setdefault("state", {})["error_code"] = error.code  # for the access log line
    response: Response
    if get_route_path(scope).startswith(OAUTH_PREFIX):
        response = JSONResponse(
            {"error": "invalid_request", "error_description": error.message},
            status_code=error.status,
            headers={**error.headers, "Cache-Control": "no-store"},
        )
    else:
        response = FhirResponse(
            operation_outcome(error), status_code=error.status, headers=error.headers
        )
    await response(scope, receive, send)
