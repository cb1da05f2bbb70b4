"""CORS for the routes browser apps call: FHIR (with bulk status and files), discovery and the
token endpoints. One policy for all of them, from FACADE_CORS_ORIGINS.

Credentials (cookies) are never allowed: tokens travel in the Authorization header, and the
pages that use facade's session cookie (login, consent, patient picker) get no CORS at all.
"""

from __future__ import annotations

from starlette._utils import get_route_path
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

#: Everything under the FHIR base: resources, metadata, .well-known, $export, status, files.
CORS_PREFIXES = ("/fhir/",)
CORS_PATHS = frozenset(
    {
        "/fhir",
        "/auth/token",
        "/auth/introspect",
        "/auth/revoke",
        "/auth/jwks",
        "/auth/smart-style.json",
    }
)
#: DELETE cancels an export; facade serves no PUT or PATCH.
ALLOWED_METHODS = ("GET", "POST", "DELETE")
#: Request headers a FHIR, SMART or Bulk Data client sends beyond the CORS-safelisted ones.
ALLOWED_HEADERS = (
    "Authorization",
    "Prefer",
    "If-None-Match",
    "If-Modified-Since",
    "Cache-Control",
    "Pragma",
    "Range",
    "X-Request-Id",
)
#: Response headers a browser app must be able to read: Bulk Data's polling (Content-Location,
#: X-Progress, Retry-After, Expires), versioning and caching, why a token was refused,
#: and how many vendor calls an answer cost.
EXPOSED_HEADERS = (
    "Location",
    "Content-Location",
    "X-Progress",
    "Retry-After",
    "Expires",
    "ETag",
    "Last-Modified",
    "Age",
    "WWW-Authenticate",
    "X-Upstream-Calls",
)
#: How long a browser may reuse a preflight answer (seconds).
PREFLIGHT_MAX_AGE = 600


def cors_applies(path: str) -> bool:
    return path in CORS_PATHS or path.startswith(CORS_PREFIXES)


class CorsPolicy:
    """Starlette's CORS middleware, applied to `cors_applies` paths only. `origins` is
    ("*",) for any origin, else the exact origins allowed; a preflight from any other origin
    gets 400, and its other requests no Access-Control-Allow-Origin, so the browser refuses."""

    def __init__(self, app: ASGIApp, origins: tuple[str, ...]):
        self.app = app
        self.cors = CORSMiddleware(
            app,
            allow_origins=origins,
            allow_methods=ALLOWED_METHODS,
            allow_headers=ALLOWED_HEADERS,
            allow_credentials=False,
            expose_headers=EXPOSED_HEADERS,
            max_age=PREFLIGHT_MAX_AGE,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and cors_applies(get_route_path(scope)):
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)
