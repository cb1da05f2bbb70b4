"""The machine-facing endpoints: discovery, JWKS, token, introspection, revocation and
dynamic client registration (RFC 7591).

Errors are RFC 6749 JSON, never OperationOutcome. Token answers carry Cache-Control:
no-store and Pragma: no-cache. Nothing here logs a token, a secret or an assertion.
"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import unquote, urlsplit

from authlib.oauth2.rfc6749 import OAuth2Error
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from facade.auth.audit import AuditEntry
from facade.auth.server.authority import Authority
from facade.auth.server.clients import AUTH_METHODS, ClientRegistrationError
from facade.auth.server.discovery import SMART_STYLE, openid_configuration, smart_configuration
from facade.auth.server.jwks import JwksUnavailable
from facade.auth.server.oauth import FacadeOAuth2Request, assertion_subject
from facade.auth.tokens import TokenRejected

router = APIRouter()

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
CORS = {"Access-Control-Allow-Origin": "*"}
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
    return _json(smart_configuration(auth.endpoints, auth.resource_types), headers=CORS)


@router.get("/fhir/.well-known/openid-configuration")
async def openid_config(request: Request) -> Response:
    auth = authority(request)
    return _json(openid_configuration(auth.endpoints, auth.resource_types), headers=CORS)


@router.get("/auth/jwks")
async def jwks(request: Request) -> Response:
    headers = {**CORS, "Cache-Control": "public, max-age=300"}
    return _json(authority(request).keys.public_jwks(), headers=headers)


@router.get("/auth/smart-style.json")
async def smart_style() -> Response:
    return _json(SMART_STYLE, headers={**CORS, "Cache-Control": "public, max-age=3600"})


# -- token ------------------------------------------------------------------------------------


@router.options("/auth/token")
@router.options("/auth/introspect")
@router.options("/auth/revoke")
async def preflight() -> Response:
    return Response(
        status_code=204,
        headers={
            **CORS,
            "Access-Control-Allow-Methods": "POST, OPTIONS",
            "Access-Control-Allow-Headers": "Authorization, Content-Type, Accept",
            "Access-Control-Max-Age": "600",
        },
    )


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
    if client is not None and client.row.jwks_uri:
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
        headers={**NO_STORE, **CORS},
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
    answer = {**dict(headers or []), **NO_STORE, **CORS}
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
    an active facade access token as a Bearer. Anything not active: exactly {"active": false}."""
    auth = authority(request)
    oauth = await oauth_request(request, auth)
    if oauth is None:
        return _error("invalid_request", "Send the request as application/x-www-form-urlencoded.")
    if not _bearer_is_active(request, auth):
        try:
            await run_in_threadpool(
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
    presented = oauth.form.get("token", "")
    return _json(
        auth.tokens.introspect(presented) if presented else {"active": False}, headers=NO_STORE
    )


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
    return Response(status_code=200, headers={**NO_STORE, **CORS})


def _bearer_is_active(request: Request, auth: Authority) -> bool:
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        return False
    try:
        auth.tokens.claims_of(credentials.strip())
    except TokenRejected:
        return False
    return True


# -- dynamic registration ---------------------------------------------------------------------


@router.post("/auth/register")
async def register(request: Request) -> Response:
    """RFC 7591. With FACADE_REGISTRATION_APPROVAL the client is held as pending (and gets
    invalid_client) until an operator approves it."""
    auth = authority(request)
    try:
        metadata = await request.json()
    except ValueError:
        return _registration_error("invalid_client_metadata", "The body must be JSON.")
    if not isinstance(metadata, dict):
        return _registration_error("invalid_client_metadata", "The body must be a JSON object.")
    redirect_uris = metadata.get("redirect_uris") or []
    if not isinstance(redirect_uris, list) or not all(isinstance(u, str) for u in redirect_uris):
        return _registration_error("invalid_redirect_uri", "redirect_uris must be a list of URLs.")
    method = metadata.get("token_endpoint_auth_method", "client_secret_basic")
    if method not in AUTH_METHODS:
        return _registration_error(
            "invalid_client_metadata", f"token_endpoint_auth_method must be one of {AUTH_METHODS}."
        )
    grant_types = metadata.get("grant_types")
    if grant_types is not None and (
        not isinstance(grant_types, list) or not all(isinstance(g, str) for g in grant_types)
    ):
        return _registration_error("invalid_client_metadata", "grant_types must be a list.")
    jwks_uri = metadata.get("jwks_uri") or ""
    jwks = metadata.get("jwks")
    if jwks_uri:
        scheme = urlsplit(str(jwks_uri)).scheme
        if scheme != "https" and not (
            scheme == "http" and auth.endpoints.issuer.startswith("http:")
        ):
            return _registration_error("invalid_client_metadata", "jwks_uri must use https.")
    if jwks is not None and not isinstance(jwks, dict):
        return _registration_error("invalid_client_metadata", "jwks must be a JWK Set.")
    scope = metadata.get("scope") or ""
    try:
        created = await run_in_threadpool(  # hashes the new secret with argon2
            auth.clients.register,
            name=str(metadata.get("client_name") or "unnamed app"),
            auth_method=method,
            redirect_uris=redirect_uris,
            scope=str(scope),
            grant_types=grant_types,
            jwks=jwks,
            jwks_uri=str(jwks_uri),
            status="pending" if auth.registration_approval else "active",
        )
    except ClientRegistrationError as exc:
        code = "invalid_redirect_uri" if "redirect" in str(exc) else "invalid_client_metadata"
        return _registration_error(code, str(exc))
    row = created.client
    body: dict[str, Any] = {
        "client_id": row.client_id,
        "client_id_issued_at": int(row.created_at.timestamp()),
        "client_name": row.name,
        "redirect_uris": row.redirect_uris.split(),
        "token_endpoint_auth_method": row.auth_method,
        "grant_types": row.grant_types.split(),
        "response_types": ["code"] if "authorization_code" in row.grant_types.split() else [],
        "scope": row.scope,
        "registration_access_token": created.registration_access_token,
        "facade_status": row.status,
    }
    if created.client_secret:
        body["client_secret"] = created.client_secret
        body["client_secret_expires_at"] = 0
    if row.jwks_uri:
        body["jwks_uri"] = row.jwks_uri
    if jwks is not None:
        body["jwks"] = jwks
    return _json(body, 201, headers=NO_STORE)


def _registration_error(error: str, description: str) -> JSONResponse:
    return _json({"error": error, "error_description": description}, 400, headers=NO_STORE)


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
