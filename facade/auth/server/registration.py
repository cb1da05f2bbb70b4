"""Dynamic client registration (RFC 7591) at /auth/register, safe by default.

A registration is rate-limited per source address, bounded in size, and its metadata is
checked (registration_rules.py); the client is stored as self-registered and, unless an
operator's initial access token vouches for it or the open policy allows it, held
`pending` until `facade client approve`. Errors are RFC 7591 JSON, never OperationOutcome.
Nothing here logs a secret, a token or a key.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from facade.auth.server.authority import Authority
from facade.auth.server.clients import AUTH_METHODS, ClientRegistrationError, grants_for
from facade.auth.server.registration_rules import (
    MAX_BODY_BYTES,
    MAX_GRANT_TYPES,
    MAX_REDIRECT_URIS,
    MAX_URI_LENGTH,
    MetadataRefused,
    check_jwks,
    clean_client_name,
    clean_scope,
    initial_status,
    string_list,
)

router = APIRouter()

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class BodyTooLarge(Exception):
    pass


def authority(request: Request) -> Authority:
    auth: Authority = request.app.state.runtime.authorization
    return auth


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers={**NO_STORE, **(headers or {})})


def _error(error: str, description: str, status: int = 400, **headers: str) -> JSONResponse:
    return _json({"error": error, "error_description": description}, status, headers)


@router.post("/auth/register")
async def register(request: Request) -> Response:
    """RFC 7591. `Authorization: Bearer <initial access token>` (RFC 7591 §3, minted with
    `facade client initial-token`) makes the client active at once; without one, the
    registration policy decides (FACADE_REGISTRATION)."""
    auth = authority(request)
    policy = auth.registration
    initial_token = _bearer(request)
    vouched = initial_token is not None and await run_in_threadpool(
        policy.initial_tokens.is_valid, initial_token
    )
    if not vouched:
        # Every attempt without a valid initial access token counts, refused ones too.
        address = request.client.host if request.client else ""
        wait = policy.limits.hit(address)
        if wait:
            request.state.error_code = "registration-rate-limited"
            return _error(
                "temporarily_unavailable",
                "Too many registrations from this address; try again later.",
                429,
                **{"Retry-After": str(int(wait + 0.999))},
            )
    if initial_token is not None and not vouched:
        return _error(
            "invalid_token",
            "The initial access token is not valid (unknown, used or expired).",
            401,
            **{"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json":  # RFC 7591 §3.1: the metadata is a JSON document
        return _error("invalid_request", "Send the registration as application/json.", 415)
    try:
        raw = await _bounded_body(request)
    except BodyTooLarge:
        return _error(
            "invalid_request", f"The registration must be at most {MAX_BODY_BYTES} bytes.", 413
        )
    try:
        metadata = _parse(raw)
        checked = await _checked_metadata(auth, metadata)
    except MetadataRefused as refused:
        return _error(refused.error, str(refused))
    grants = grants_for(checked["auth_method"], checked["redirect_uris"], checked["grant_types"])
    decision = initial_status(policy.mode, grants, checked["scope"], vouched=vouched)
    if vouched and not await run_in_threadpool(policy.initial_tokens.use, str(initial_token)):
        # Another registration used the same token in the meantime.
        return _error("invalid_token", "The initial access token was used already.", 401)
    try:
        created = await run_in_threadpool(  # hashes the new secret with argon2
            auth.clients.register,
            **checked,
            status=decision.status,
            self_registered=True,
        )
    except ClientRegistrationError as exc:
        code = "invalid_redirect_uri" if "redirect" in str(exc) else "invalid_client_metadata"
        return _error(code, str(exc))
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
        # Honest about the hold: a pending client gets invalid_client until approved.
        "facade_status": row.status,
    }
    if decision.reason:
        body["facade_status_reason"] = decision.reason
    if created.client_secret:
        body["client_secret"] = created.client_secret
        body["client_secret_expires_at"] = 0
    if row.jwks_uri:
        body["jwks_uri"] = row.jwks_uri
    if checked["jwks"] is not None:
        body["jwks"] = checked["jwks"]
    return _json(body, 201)


def _bearer(request: Request) -> str | None:
    """The initial access token, if the request carries one (None: no Authorization)."""
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, credentials = header.partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" else ""


async def _bounded_body(request: Request) -> bytes:
    """The body, read no further than MAX_BODY_BYTES (a Content-Length beyond it is
    refused before reading anything)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise BodyTooLarge
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > MAX_BODY_BYTES:
            raise BodyTooLarge
    return bytes(body)


def _parse(raw: bytes) -> dict[str, Any]:
    try:
        metadata = json.loads(raw)
    except ValueError:
        raise MetadataRefused("The body must be JSON.") from None
    if not isinstance(metadata, dict):
        raise MetadataRefused("The body must be a JSON object.")
    return metadata


async def _checked_metadata(auth: Authority, metadata: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments of ClientRegistry.register, every member checked."""
    name = clean_client_name(metadata.get("client_name"))
    redirect_uris = string_list(
        metadata, "redirect_uris", MAX_REDIRECT_URIS, max_length=MAX_URI_LENGTH
    )
    method = metadata.get("token_endpoint_auth_method", "client_secret_basic")
    if method not in AUTH_METHODS:
        raise MetadataRefused(f"token_endpoint_auth_method must be one of {list(AUTH_METHODS)}.")
    grant_types = (
        string_list(metadata, "grant_types", MAX_GRANT_TYPES, max_length=40)
        if "grant_types" in metadata
        else None
    )
    jwks = metadata.get("jwks")
    jwks_uri = metadata.get("jwks_uri") or ""
    if jwks is not None and jwks_uri:
        raise MetadataRefused("Send jwks or jwks_uri, not both (RFC 7591 §2).")
    if jwks is not None:
        jwks = check_jwks(jwks)
    if jwks_uri:
        if not isinstance(jwks_uri, str):
            raise MetadataRefused("jwks_uri must be a URL.")
        if reason := await auth.jwks.refusal(jwks_uri):
            raise MetadataRefused(f"{reason}.")
    return {
        "name": name,
        "auth_method": method,
        "redirect_uris": redirect_uris,
        "scope": clean_scope(metadata.get("scope")),
        "grant_types": grant_types,
        "jwks": jwks,
        "jwks_uri": jwks_uri,
    }
