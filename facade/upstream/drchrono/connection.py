"""Connecting facade to a DrChrono account: the authorization-code flow end to end.

`complete_authorization` is the one path from an authorization code to stored credentials,
for the real DrChrono and the sandbox alike. `authorize_auto_approved` plays the browser for
an authorize page that approves without asking (the sandbox), and only for that.
"""

from __future__ import annotations

import secrets
from datetime import datetime

import httpx

from facade.errors import UpstreamAuthFailed
from facade.store.connections import VendorCredentials
from facade.upstream.drchrono.oauth import (
    authorize_url,
    code_from_redirect,
    exchange_code,
)


async def complete_authorization(
    http: httpx.AsyncClient,
    base_url: str,
    client_id: str,
    client_secret: str,
    code: str,
    redirect_uri: str,
    now: datetime,
) -> VendorCredentials:
    tokens = await exchange_code(http, base_url, client_id, client_secret, code, redirect_uri)
    return VendorCredentials(
        base_url=base_url.rstrip("/"),
        client_id=client_id,
        client_secret=client_secret,
        access_token=tokens.access_token,
        refresh_token=tokens.refresh_token,
        expires_at=tokens.expires_at(now),
        scope=tokens.scope,
    )


async def authorize_auto_approved(
    http: httpx.AsyncClient,
    base_url: str,
    client_id: str,
    client_secret: str,
    redirect_uri: str,
    now: datetime,
) -> VendorCredentials:
    state = secrets.token_urlsafe(16)
    url = authorize_url(base_url, client_id, redirect_uri, state)
    response = await http.get(url, follow_redirects=False)
    location = response.headers.get("location")
    if response.status_code not in (302, 303) or not location:
        raise UpstreamAuthFailed("The authorize page did not approve facade automatically.")
    code = code_from_redirect(location, state)
    return await complete_authorization(
        http, base_url, client_id, client_secret, code, redirect_uri, now
    )
