"""DrChrono's OAuth 2.0 authorization-code flow (Django OAuth Toolkit): URLs and token calls.

Used the same way for the real DrChrono and for the sandbox; only the base URL differs.
Token values are returned to the caller and never logged here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

from facade.errors import UpstreamAuthFailed, UpstreamUnavailable

#: The scopes facade asks for: read access to everything its mappings use.
DEFAULT_SCOPES = "user:read patients:read calendar:read clinical:read labs:read billing:read"


@dataclass(frozen=True)
class TokenResponse:
    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expires_in: int
    scope: str

    def expires_at(self, now: datetime) -> datetime:
        return now + timedelta(seconds=self.expires_in)


def authorize_url(
    base_url: str, client_id: str, redirect_uri: str, state: str, scope: str = DEFAULT_SCOPES
) -> str:
    query = urlencode(
        {
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "response_type": "code",
            "scope": scope,
            "state": state,
        }
    )
    return f"{base_url.rstrip('/')}/o/authorize/?{query}"


def code_from_redirect(location: str, expected_state: str) -> str:
    """The authorization code from the vendor's redirect back to us, after checking state."""
    query = parse_qs(urlsplit(location).query)
    if query.get("state", [""])[0] != expected_state:
        raise UpstreamAuthFailed("The vendor's authorization answer did not match our request.")
    if "error" in query:
        raise UpstreamAuthFailed(f"The vendor refused authorization: {query['error'][0]}.")
    code = query.get("code", [""])[0]
    if not code:
        raise UpstreamAuthFailed("The vendor's authorization answer carried no code.")
    return code


async def exchange_code(
    http: httpx.AsyncClient,
    base_url: str,
    client_id: str,
    client_secret: str,
    code: str,
    redirect_uri: str,
) -> TokenResponse:
    return await _token_call(
        http,
        base_url,
        {
            "grant_type": "authorization_code",
            "client_id": client_id,
            "client_secret": client_secret,
            "redirect_uri": redirect_uri,
            "code": code,
        },
    )


async def refresh_tokens(
    http: httpx.AsyncClient, base_url: str, client_id: str, client_secret: str, refresh_token: str
) -> TokenResponse:
    return await _token_call(
        http,
        base_url,
        {
            "grant_type": "refresh_token",
            "client_id": client_id,
            "client_secret": client_secret,
            "refresh_token": refresh_token,
        },
    )


async def revoke_token(
    http: httpx.AsyncClient, base_url: str, client_id: str, client_secret: str, token: str
) -> None:
    await http.post(
        f"{base_url.rstrip('/')}/o/revoke_token/",
        data={"client_id": client_id, "client_secret": client_secret, "token": token},
    )


async def _token_call(
    http: httpx.AsyncClient, base_url: str, form: dict[str, str]
) -> TokenResponse:
    # The trailing slash matters: DrChrono's POST OAuth URLs 404 without it.
    try:
        response = await http.post(f"{base_url.rstrip('/')}/o/token/", data=form)
    except httpx.TimeoutException as exc:
        raise UpstreamUnavailable("The vendor's token endpoint did not answer.") from exc
    except httpx.TransportError as exc:
        raise UpstreamUnavailable("The vendor's token endpoint cannot be reached.") from exc
    if response.status_code >= 500:
        raise UpstreamUnavailable("The vendor's token endpoint failed.")
    body: dict[str, Any] = _json_or_empty(response)
    if response.status_code != 200:
        error = str(body.get("error", f"http {response.status_code}"))
        raise UpstreamAuthFailed(f"The vendor refused facade's authorization ({error}).")
    try:
        return TokenResponse(
            access_token=str(body["access_token"]),
            refresh_token=str(body["refresh_token"]),
            expires_in=int(body.get("expires_in", 172800)),
            scope=str(body.get("scope", "")),
        )
    except (KeyError, ValueError) as exc:
        raise UpstreamUnavailable("The vendor's token answer was malformed.") from exc


def _json_or_empty(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
