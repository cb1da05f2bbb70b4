"""The machine-facing endpoints: discovery, JWKS, token, introspection and revocation
(dynamic client registration lives in registration.py).

Errors are RFC 6749 JSON, never OperationOutcome. Token answers carry Cache-Control:
no-store and Pragma: no-cache. Nothing here logs a token, a secret or an assertion. CORS is
facade.rest.cors's, for every route here.
"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import unquote

from authlib.oauth2.rfc6749 import OAuth2Error
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from facade.auth.audit import AuditEntry
from facade.auth.server.authority import Authority
from facade.auth.server.clients import RegisteredClient
from facade.auth.server.discovery import SMART_STYLE, openid_configuration, smart_configuration
from facade.auth.server.jwks import JwksUnavailable
from facade.auth.server.oauth import FacadeOAuth2Request, assertion_subject
from facade.auth.tokens import TokenRejected

router = APIRouter()

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
#: Introspection is for confidential clients (resource servers, the token's own app).
INTROSPECTION_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt"]
REVOCATION_METHODS = [*INTROSPECTION_METHODS, "none"]


def authority(request: Request) -> Authority:
    auth: Authority = request.app.state.runtime.authorization
    return auth


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=headers)


# -- discovery --------------------------------------------------------------------------------


@router.get("/fhir/.well-known/smart-configuration")
async def smart_config(request: Request) -> Response:
    auth = authority(request)
    return _json(
        smart_configuration(auth.endpoints, auth.resource_types),
    )


@router.get("/fhir/.well-known/openid-configuration")
async def openid_config(request: Request) -> Response:
    auth = authority(request)
    return _json(
        openid_configuration(auth.endpoints, auth.resource_types),
    )


@router.get("/auth/jwks")
async def jwks(request: Request) -> Response:
    headers = {"Cache-Control": "public, max-age=300"}
    return _json(authority(request).keys.public_jwks(), headers=headers)


@router.get("/auth/smart-style.json")
async def smart_style() -> Response:
    return _json(SMART_STYLE, headers={"Cache-Control": "public, max-age=3600"})


# -- token ------------------------------------------------------------------------------------


async def oauth_request(request: Request, auth: Authority) -> FacadeOAuth2Request | None:
    """The form as authlib wants it, with an asymmetric client's keys fetched first
    (authlib's machinery is synchronous). None when the body is not a form."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        return None
    form = await request.form()
    pairs = [(k, v) for k, v in form.multi_items() if isinstance(v, str)]
    client_jwks = None
    client_id, kid = assertion_subject(dict(pairs))
    client = auth.clients.find(client_id) if client_id else None
    # A held or disabled client gets invalid_client anyway: facade fetches nothing for it.
    if client is not None and client.active and client.row.jwks_uri:
        try:
            client_jwks = await auth.jwks.get(client.row.jwks_uri)
            if kid and kid not in {k.get("kid") for k in client_jwks["keys"]}:
                # A kid we have not seen: the client may have rotated its keys.
                client_jwks = await auth.jwks.get(client.row.jwks_uri, refresh=True)
        except JwksUnavailable:
            client_jwks = None
    return FacadeOAuth2Request(
        request.method, str(request.url), request.headers, pairs, client_jwks=client_jwks
    )


def _error(error: str, description: str, status: int = 400) -> JSONResponse:
    return _json(
        {"error": error, "error_description": description},
        status,
        headers=NO_STORE,
    )


@router.post("/auth/token")
async def token(request: Request) -> Response:
    auth = authority(request)
    oauth = await oauth_request(request, auth)
    if oauth is None:
        return _error("invalid_request", "Send the request as application/x-www-form-urlencoded.")
    # authlib is synchronous, and a client secret check is an argon2 hash (tens of ms of
    # CPU): both run off the event loop, so token requests do not stall FHIR traffic.
    status, body, headers = await run_in_threadpool(auth.server.create_token_response, oauth)
    answer = {**dict(headers or []), **NO_STORE}
    # Every token request is audited: which client, which patient, granted or why not.
    request.state.audit = AuditEntry(
        interaction="token",
        client_id=str(getattr(oauth.payload, "client_id", "") or "") or _basic_client_id(request),
        patient_ids=[str(body["patient"])]
        if isinstance(body, dict) and body.get("patient")
        else [],
    )
    if status != 200 and isinstance(body, dict):
        request.state.error_code = str(body.get("error", ""))
    if status == 401 and request.headers.get("authorization", "").lower().startswith("basic"):
        answer.setdefault("WWW-Authenticate", 'Basic realm="facade"')
    return _json(body, status, headers=answer)


# -- introspection and revocation -------------------------------------------------------------


@router.post("/auth/introspect")
async def introspect(request: Request) -> Response:
    """RFC 7662. The caller is a confidential client (secret or private_key_jwt) or presents
    an active facade access token as a Bearer. Anything not active: exactly {"active": false}.

    A token is active only to the client it was issued to (a Bearer counts as its own
    client), or to a client the operator marked as a resource server: no other app learns
    whose token it holds (RFC 7662 §4: introspection must not be a token-scanning oracle)."""
    auth = authority(request)
    oauth = await oauth_request(request, auth)
    if oauth is None:
        return _error("invalid_request", "Send the request as application/x-www-form-urlencoded.")
    caller = _bearer_client(request, auth)
    resource_server = False
    if not caller:
        try:
            client = await run_in_threadpool(
                auth.server.authenticate_client, oauth, INTROSPECTION_METHODS, "introspection"
            )
        except OAuth2Error:
            denied = _error(
                "invalid_client",
                "Authenticate as a confidential client or with a Bearer token.",
                401,
            )
            denied.headers["WWW-Authenticate"] = 'Basic realm="facade", Bearer realm="facade"'
            return denied
        caller = client.get_client_id()
        # Only an authenticated client can be a resource server, never a Bearer's holder.
        resource_server = isinstance(client, RegisteredClient) and client.row.resource_server
    presented = oauth.form.get("token", "")
    answer = auth.tokens.introspect(presented) if presented else {"active": False}
    if answer.get("client_id") != caller and not resource_server:
        answer = {"active": False}
    return _json(answer, headers=NO_STORE)


@router.post("/auth/revoke")
async def revoke(request: Request) -> Response:
    """RFC 7009: the client revokes one of its own tokens; unknown tokens are fine (200)."""
    auth = authority(request)
    oauth = await oauth_request(request, auth)
    if oauth is None:
        return _error("invalid_request", "Send the request as application/x-www-form-urlencoded.")
    try:
        client = await run_in_threadpool(
            auth.server.authenticate_client, oauth, REVOCATION_METHODS, "revocation"
        )
    except OAuth2Error:
        return _error("invalid_client", "The client could not be authenticated.", 401)
    presented = oauth.form.get("token", "")
    if not presented:
        return _error("invalid_request", "Missing 'token'.")
    auth.tokens.revoke(presented, client.get_client_id())
    return Response(status_code=200, headers=NO_STORE)


def _bearer_client(request: Request, auth: Authority) -> str:
    """The client of an active facade access token sent as a Bearer, or ""."""
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        return ""
    try:
        claims = auth.tokens.claims_of(credentials.strip())
    except TokenRejected:
        return ""
    return str(claims.get("client_id") or "")


def _basic_client_id(request: Request) -> str:
    """The client id of an HTTP Basic client authentication, for the audit record."""
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return ""
    try:
        decoded = base64.b64decode(credentials).decode()
    except (ValueError, UnicodeDecodeError):
        return ""
    return unquote(decoded.partition(":")[0])
