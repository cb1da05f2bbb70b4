"""The pages around the API, without a token: the landing page at /, the FHIR base itself,
the OpenAPI document and Swagger UI at /docs, served from facade (never from a CDN).

Nothing here shows a setting beyond the public base URL, nor anything from the EHR.
"""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit

import orjson
from fastapi import APIRouter, Request
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from capability.openapi import openapi_document
from facade import __version__
from facade.errors import InvalidRequest, ResourceNotFound
from facade.runtime import Runtime

router = APIRouter()

_HERE = Path(__file__).parent
#: Swagger UI's files as the swagger-ui-py package ships them, found without importing it.
_SWAGGER_SPEC = importlib.util.find_spec("swagger_ui")
SWAGGER_UI = (
    Path(next(iter(_SWAGGER_SPEC.submodule_search_locations or []))) / "static"
    if _SWAGGER_SPEC is not None
    else _HERE / "static"
)
#: The only files /docs/ serves: Swagger UI's bundle, style and icon, and facade's start-up.
DOCS_ASSETS = {
    "swagger-ui-bundle.js": SWAGGER_UI / "swagger-ui-bundle.js",
    "swagger-ui.css": SWAGGER_UI / "swagger-ui.css",
    "favicon-32x32.png": SWAGGER_UI / "favicon-32x32.png",
    "start.js": _HERE / "static" / "start.js",
}
_PAGE_SECURITY = {
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}
LANDING_HEADERS = {
    **_PAGE_SECURITY,
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
}
#: Swagger UI runs facade's own scripts only, and talks to facade only ("Try it out" calls
#: the document's server: the public base URL's origin, which may differ from the address
#: the page was opened at, e.g. behind a proxy); {origin} is that origin.
DOCS_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self' {origin}; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'none'"
)


@cache
def _templates() -> Environment:
    return Environment(
        loader=FileSystemLoader(_HERE / "templates"),
        autoescape=select_autoescape(["html"]),
        auto_reload=False,
    )


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


@router.get("/")
async def landing(request: Request) -> Response:
    runtime = _runtime(request)
    html = (
        _templates()
        .get_template("landing.html")
        .render(
            fhir_base=runtime.settings.base_url,
            vendor=runtime.service.registry.vendor,
            version=__version__,
        )
    )
    return HTMLResponse(html, headers=LANDING_HEADERS)


@router.get("/fhir")
@router.get("/fhir/")
async def fhir_base(request: Request) -> Response:
    """GET [base] would be a search across all types, which facade does not offer (its
    CapabilityStatement names no system search): a browser is sent to the landing page, a
    FHIR client gets a 400 that says where to go instead (as HAPI FHIR does)."""
    if _wants_html(request) and not request.url.query:
        return RedirectResponse(f"{_site_root(request)}/", status_code=303)
    raise InvalidRequest(
        "This is the FHIR base: facade offers no search across all resource types. Read "
        "[base]/metadata for what it serves, or search one type, e.g. [base]/Patient."
    )


def _site_root(request: Request) -> str:
    """Where facade's own routes are, as clients see them: the public FHIR base without
    /fhir (a proxy may serve facade under a path of its own)."""
    return _runtime(request).settings.base_url.removesuffix("/fhir")


def _wants_html(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return any(part.split(";")[0].strip() == "text/html" for part in accept.split(","))


@router.get("/openapi.json")
async def openapi(request: Request) -> Response:
    """capability/openapi.py's document, built once per process (the registry is fixed)."""
    built: bytes | None = getattr(request.app.state, "openapi", None)
    if built is None:
        registry = _runtime(request).service.registry
        built = orjson.dumps(openapi_document(registry, server_url=_site_root(request)))
        request.app.state.openapi = built
    return Response(built, media_type="application/json")


@router.get("/docs")
async def docs(request: Request) -> Response:
    public = urlsplit(_site_root(request))
    policy = DOCS_POLICY.format(origin=f"{public.scheme}://{public.netloc}")
    return HTMLResponse(
        _templates().get_template("docs.html").render(),
        headers={**_PAGE_SECURITY, "Content-Security-Policy": policy},
    )


@router.get("/docs/{asset}")
async def docs_asset(asset: str) -> Response:
    path = DOCS_ASSETS.get(asset)
    if path is None or not path.is_file():
        raise ResourceNotFound("There is nothing at this address.")
    return FileResponse(
        path,
        headers={"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"},
    )
