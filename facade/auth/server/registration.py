"""Dynamic client registration (RFC 7591) at /auth/register.

Errors are RFC 7591 JSON, never OperationOutcome. Nothing here logs a secret or a key.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from facade.auth.server.authority import Authority
from facade.auth.server.clients import AUTH_METHODS, ClientRegistrationError

router = APIRouter()

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def authority(request: Request) -> Authority:
    auth: Authority = request.app.state.runtime.authorization
    return auth


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=headers)


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
