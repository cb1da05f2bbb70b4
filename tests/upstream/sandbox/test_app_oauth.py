"""The sandbox's OAuth endpoints behave like DrChrono's Django OAuth Toolkit."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx

from facade.upstream.drchrono.sandbox.state import DEFAULT_CLIENT_ID, OAuthApp, SandboxState
from tests.upstream.sandbox.app_harness import make_state, sandbox_client

REDIRECT = "http://127.0.0.1:8765/callback"


async def _authorize(client: httpx.AsyncClient, **overrides: str) -> httpx.Response:
    params = {
        "client_id": DEFAULT_CLIENT_ID,
        "redirect_uri": REDIRECT,
        "response_type": "code",
        "scope": "patients:read clinical:read",
        "state": "xyz",
    } | overrides
    return await client.get("/o/authorize", params=params)


def _code_from(response: httpx.Response) -> str:
    query = parse_qs(urlsplit(response.headers["location"]).query)
    return query["code"][0]


async def _exchange(client: httpx.AsyncClient, code: str, **overrides: str) -> httpx.Response:
    form = {
        "grant_type": "authorization_code",
        "client_id": DEFAULT_CLIENT_ID,
        "client_secret": "s3cret",
        "redirect_uri": REDIRECT,
        "code": code,
    } | overrides
    return await client.post("/o/token/", data=form)


async def test_authorize_redirects_back_with_code_and_state() -> None:
    state, _ = make_state()
    async with sandbox_client(state, authorized=False) as client:
        response = await _authorize(client)
    assert response.status_code == 302
    location = urlsplit(response.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT
    query = parse_qs(location.query)
    assert query["state"] == ["xyz"]
    assert len(query["code"][0]) == 30


async def test_authorization_code_is_exchanged_for_48_hour_bearer_tokens() -> None:
    state, _ = make_state()
    async with sandbox_client(state, authorized=False) as client:
        code = _code_from(await _authorize(client))
        response = await _exchange(client, code)
        body = response.json()
        api = await client.get(
            "/api/doctors", headers={"Authorization": f"Bearer {body['access_token']}"}
        )
    assert response.status_code == 200
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 172800
    assert body["scope"] == "patients:read clinical:read"
    assert len(body["access_token"]) == 30 and len(body["refresh_token"]) == 30
    assert api.status_code == 200


async def test_unknown_client_gets_an_error_page_not_a_redirect() -> None:
    state, _ = make_state()
    async with sandbox_client(state, authorized=False) as client:
        response = await _authorize(client, client_id="nobody")
    assert response.status_code == 400
    assert "location" not in response.headers


async def test_unregistered_redirect_uri_gets_an_error_page() -> None:
    state, _ = make_state()
    state.register_app(OAuthApp("strict", "pw", redirect_uris=("https://app.example/cb",)))
    async with sandbox_client(state, authorized=False) as client:
        registered = await _authorize(
            client, client_id="strict", redirect_uri="https://app.example/cb"
        )
        loopback = await _authorize(client, client_id="strict")
        elsewhere = await _authorize(client, redirect_uri="https://evil.example/cb")
    assert registered.status_code == 302
    assert loopback.status_code == 400  # only the default app accepts any loopback port
    assert elsewhere.status_code == 400


async def test_code_is_single_use() -> None:
    state, _ = make_state()
    async with sandbox_client(state, authorized=False) as client:
        code = _code_from(await _authorize(client))
        first = await _exchange(client, code)
        second = await _exchange(client, code)
    assert first.status_code == 200
    assert second.status_code == 400
    assert second.json() == {"error": "invalid_grant"}


async def test_code_expires_after_one_minute() -> None:
    state, clock = make_state()
    async with sandbox_client(state, authorized=False) as client:
        code = _code_from(await _authorize(client))
        clock.advance(61)
        response = await _exchange(client, code)
    assert response.status_code == 400
    assert response.json() == {"error": "invalid_grant"}


async def test_code_must_be_redeemed_with_the_same_redirect_uri() -> None:
    state, _ = make_state()
    async with sandbox_client(state, authorized=False) as client:
        code = _code_from(await _authorize(client))
        response = await _exchange(client, code, redirect_uri="http://127.0.0.1:9999/other")
    assert response.json() == {"error": "invalid_grant"}


async def test_wrong_client_secret_is_invalid_client() -> None:
    state, _ = make_state()
    async with sandbox_client(state, authorized=False) as client:
        code = _code_from(await _authorize(client))
        response = await _exchange(client, code, client_secret="wrong")
    assert response.status_code == 401
    assert response.json() == {"error": "invalid_client"}


async def test_unsupported_grant_type() -> None:
    state, _ = make_state()
    async with sandbox_client(state, authorized=False) as client:
        response = await client.post(
            "/o/token/",
            data={
                "grant_type": "client_credentials",
                "client_id": DEFAULT_CLIENT_ID,
                "client_secret": "s3cret",
            },
        )
    assert response.status_code == 400
    assert response.json() == {"error": "unsupported_grant_type"}


async def test_token_endpoint_refuses_json_bodies() -> None:
    state, _ = make_state()
    async with sandbox_client(state, authorized=False) as client:
        code = _code_from(await _authorize(client))
        response = await client.post(
            "/o/token/",
            json={
                "grant_type": "authorization_code",
                "client_id": DEFAULT_CLIENT_ID,
                "client_secret": "s3cret",
                "redirect_uri": REDIRECT,
                "code": code,
            },
        )
    assert response.status_code == 400


async def test_token_endpoint_requires_the_trailing_slash() -> None:
    state, _ = make_state()
    async with sandbox_client(state, authorized=False) as client:
        response = await client.post("/o/token", data={"grant_type": "refresh_token"})
    assert response.status_code == 404


async def test_refresh_rotates_the_refresh_token() -> None:
    state, _ = make_state()
    first = state.issue_tokens()
    form = {
        "grant_type": "refresh_token",
        "client_id": DEFAULT_CLIENT_ID,
        "client_secret": "s3cret",
    }
    async with sandbox_client(state, authorized=False) as client:
        refreshed = await client.post(
            "/o/token/", data=form | {"refresh_token": first.refresh_token}
        )
        reused = await client.post("/o/token/", data=form | {"refresh_token": first.refresh_token})
        body = refreshed.json()
        old_access = await client.get(
            "/api/doctors", headers={"Authorization": f"Bearer {first.access_token}"}
        )
        new_access = await client.get(
            "/api/doctors", headers={"Authorization": f"Bearer {body['access_token']}"}
        )
    assert refreshed.status_code == 200
    assert body["refresh_token"] != first.refresh_token
    assert body["expires_in"] == 172800
    assert reused.status_code == 400 and reused.json() == {"error": "invalid_grant"}
    assert old_access.status_code == 401
    assert new_access.status_code == 200


async def test_revoked_access_token_no_longer_works() -> None:
    state, _ = make_state()
    tokens = state.issue_tokens()
    bearer = {"Authorization": f"Bearer {tokens.access_token}"}
    async with sandbox_client(state, authorized=False) as client:
        before = await client.get("/api/doctors", headers=bearer)
        revoked = await client.post(
            "/o/revoke_token/",
            data={
                "client_id": DEFAULT_CLIENT_ID,
                "client_secret": "s3cret",
                "token": tokens.access_token,
            },
        )
        after = await client.get("/api/doctors", headers=bearer)
    assert (before.status_code, revoked.status_code, after.status_code) == (200, 200, 401)


async def test_revoke_with_a_bad_client_is_refused() -> None:
    state, _ = make_state()
    tokens = state.issue_tokens()
    async with sandbox_client(state, authorized=False) as client:
        response = await client.post(
            "/o/revoke_token/",
            data={
                "client_id": DEFAULT_CLIENT_ID,
                "client_secret": "x",
                "token": tokens.access_token,
            },
        )
    assert response.status_code == 401
    assert tokens.access_token in state.access_tokens


def test_default_app_secret_is_stable_for_a_seed() -> None:
    one = SandboxState.with_default_app(make_state()[0].dataset, seed=7)
    two = SandboxState.with_default_app(make_state()[0].dataset, seed=7)
    assert one.default_app.client_secret == two.default_app.client_secret
    assert one.default_app.client_id == DEFAULT_CLIENT_ID
