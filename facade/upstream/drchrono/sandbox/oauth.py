"""DrChrono's OAuth endpoints (Django OAuth Toolkit): /o/authorize, /o/token/, /o/revoke_token/.

Authorization auto-approves (there is no user to ask). The token endpoints take form-encoded
bodies only, as the vendor documents; they must never accept JSON nor issue a token to a
client whose secret does not match.
"""

from __future__ import annotations

import base64
import binascii
import html
from urllib.parse import urlencode

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from facade.upstream.drchrono.sandbox.state import ALL_SCOPES, OAuthApp, SandboxState

_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def _error(error: str, status: int = 400, description: str | None = None) -> JSONResponse:
    body = {"error": error}
    if description:
        body["error_description"] = description
    return JSONResponse(body, status_code=status, headers={"Cache-Control": "no-store"})


def _redirect(redirect_uri: str, params: dict[str, str]) -> RedirectResponse:
    separator = "&" if "?" in redirect_uri else "?"
    return RedirectResponse(f"{redirect_uri}{separator}{urlencode(params)}", status_code=302)


async def authorize(state: SandboxState, request: Request) -> Response:
    params = request.query_params
    app = state.apps.get(params.get("client_id", ""))
    redirect_uri = params.get("redirect_uri", "")
    if app is None:
        return _error_page("Invalid client_id parameter value.")
    if not redirect_uri or not app.accepts_redirect(redirect_uri):
        return _error_page("Mismatching redirect URI.")
    extra = {"state": params["state"]} if "state" in params else {}
    if params.get("response_type") != "code":
        return _redirect(redirect_uri, {"error": "unsupported_response_type", **extra})
    scope = params.get("scope") or ALL_SCOPES
    code = state.create_code(app.client_id, redirect_uri, scope)
    return _redirect(redirect_uri, {"code": code.code, **extra})


def _error_page(message: str) -> HTMLResponse:
    body = f"<html><body><h1>Error: invalid_request</h1><p>{html.escape(message)}</p></body></html>"
    return HTMLResponse(body, status_code=400)


async def _form(request: Request) -> FormData | None:
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith(_FORM_TYPES):
        return None
    return await request.form()


def _client(state: SandboxState, request: Request, form: FormData) -> OAuthApp | None:
    """Client credentials from the form or, as DOT also allows, HTTP Basic auth."""
    client_id, client_secret = str(form.get("client_id", "")), str(form.get("client_secret", ""))
    header = request.headers.get("authorization", "")
    if header.lower().startswith("basic "):
        try:
            decoded = base64.b64decode(header[6:]).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        client_id, _, client_secret = decoded.partition(":")
    return state.authenticate_client(client_id, client_secret)


async def token(state: SandboxState, request: Request) -> Response:
    form = await _form(request)
    if form is None:
        return _error("invalid_request", description="The body must be form-encoded.")
    grant_type = str(form.get("grant_type", ""))
    if grant_type not in ("authorization_code", "refresh_token"):
        return _error("unsupported_grant_type")
    app = _client(state, request, form)
    if app is None:
        return _error("invalid_client", status=401)
    if grant_type == "authorization_code":
        code, redirect_uri = str(form.get("code", "")), str(form.get("redirect_uri", ""))
        if not code:
            return _error("invalid_request", description="Missing code parameter.")
        if not redirect_uri:
            return _error("invalid_request", description="Missing redirect URI.")
        grant = state.redeem_code(code, app.client_id)
        if grant is None or grant.redirect_uri != redirect_uri:
            return _error("invalid_grant")
        issued = state.issue_tokens(app.client_id, grant.scope)
    else:
        refresh_token = str(form.get("refresh_token", ""))
        if not refresh_token:
            return _error("invalid_request", description="Missing refresh token parameter.")
        rotated = state.rotate_refresh_token(refresh_token, app.client_id)
        if rotated is None:
            return _error("invalid_grant")
        issued = rotated
    return JSONResponse(
        issued.as_json(), headers={"Cache-Control": "no-store", "Pragma": "no-cache"}
    )


async def revoke_token(state: SandboxState, request: Request) -> Response:
    form = await _form(request)
    if form is None:
        return _error("invalid_request", description="The body must be form-encoded.")
    app = _client(state, request, form)
    if app is None:
        return _error("invalid_client", status=401)
    # RFC 7009: an unknown token is not an error; the answer is 200 either way.
    state.revoke(str(form.get("token", "")), app.client_id)
    return Response(status_code=200)
