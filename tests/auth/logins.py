"""Getting a real token the way an app does, for tests that attack with it: an app registered
by the operator (`facade client add --public`) or by itself (POST /auth/register), then a
login through the authorize, login and consent pages and the code exchange."""

from __future__ import annotations

from typing import Any

import httpx

from facade.auth.server import Authority
from facade.runtime import Runtime
from tests.auth.conftest import REDIRECT_URI, App, exchange, launch
from tests.tokens import operator


def operator_public_app(runtime: Runtime, name: str = "Operator's public app") -> App:
    """`facade client add --public --redirect-uri …` with no --scope: any scope may be asked."""
    made = operator(runtime).add_client(name=name, redirect_uris=[REDIRECT_URI], public=True)
    return App(made.client_id)


async def self_registered_app(
    http: httpx.AsyncClient, authority: Authority, scope: str = ""
) -> App:
    """A public app registered through POST /auth/register, approved by the operator if
    registration held it (the safe default), as an attacker's app would be once approved."""
    metadata: dict[str, Any] = {
        "client_name": "Self-registered app",
        "redirect_uris": [REDIRECT_URI],
        "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code", "refresh_token"],
    }
    if scope:
        metadata["scope"] = scope
    response = await http.post("/auth/register", json=metadata)
    assert response.status_code == 201, response.text
    body = response.json()
    if body.get("facade_status") != "active":
        assert authority.clients.set_status(body["client_id"], "active")
    return App(body["client_id"])


async def login_token(
    http: httpx.AsyncClient, app: App, username: str, scope: str
) -> dict[str, Any]:
    """The token response of a standalone launch: authorize, log in, allow all, exchange."""
    done = await launch(http, app, username, scope)
    assert "code" in done.query, done.location
    response = await exchange(http, app, done)
    assert response.status_code == 200, response.text
    return dict(response.json())
