"""Introspection answers `active: true` only to the client a token was issued to, or to a
resource server the operator marked (issue 10, item 8). Reproduces the finding: another
confidential client asked about a patient's token and learnt its `sub` and `patient`."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlmodel import select

from facade.auth.server import Authority
from facade.runtime import Runtime
from facade.store.models import OAuthClient
from tests.auth.conftest import PATIENT_SCOPES, REDIRECT_URI, App, basic
from tests.auth.logins import login_token


def _confidential(authority: Authority, name: str) -> App:
    made = authority.clients.register(
        name=name, auth_method="client_secret_basic", redirect_uris=[REDIRECT_URI], scope=""
    )
    return App(made.client.client_id, made.client_secret)


def _mark_resource_server(runtime: Runtime, app: App) -> None:
    """What `facade client add --resource-server` records."""
    with runtime.database.session() as session:
        row = session.exec(select(OAuthClient).where(OAuthClient.client_id == app.client_id)).one()
        row.resource_server = True
        session.add(row)
        session.commit()


async def _introspect(
    http: httpx.AsyncClient, token: str, headers: dict[str, str]
) -> dict[str, Any]:
    response = await http.post("/auth/introspect", data={"token": token}, headers=headers)
    assert response.status_code == 200, response.text
    assert "no-store" in response.headers["cache-control"]
    return dict(response.json())


@pytest.fixture
async def patients_token(
    http: httpx.AsyncClient, confidential_app: App, patient_user: str
) -> dict[str, Any]:
    return await login_token(http, confidential_app, patient_user, PATIENT_SCOPES)


async def test_another_confidential_client_learns_nothing(
    http: httpx.AsyncClient, authority: Authority, patients_token: dict[str, Any]
) -> None:
    snoop = _confidential(authority, "Another app")
    answer = await _introspect(http, patients_token["access_token"], basic(snoop))
    assert answer == {"active": False}


async def test_the_owning_client_sees_the_token(
    http: httpx.AsyncClient,
    confidential_app: App,
    patients_token: dict[str, Any],
    patient_user: str,
    patient_id: str,
) -> None:
    answer = await _introspect(http, patients_token["access_token"], basic(confidential_app))
    assert answer["active"] is True
    assert answer["client_id"] == confidential_app.client_id
    assert answer["sub"] == patient_user and answer["patient"] == patient_id


async def test_a_resource_server_sees_every_clients_token(
    http: httpx.AsyncClient,
    auth_runtime: Runtime,
    authority: Authority,
    confidential_app: App,
    patients_token: dict[str, Any],
    patient_id: str,
) -> None:
    server = _confidential(authority, "The practice's resource server")
    assert await _introspect(http, patients_token["access_token"], basic(server)) == {
        "active": False
    }
    _mark_resource_server(auth_runtime, server)
    answer = await _introspect(http, patients_token["access_token"], basic(server))
    assert answer["active"] is True
    assert answer["client_id"] == confidential_app.client_id
    assert answer["patient"] == patient_id


async def test_a_bearer_sees_its_own_clients_tokens_and_no_one_elses(
    http: httpx.AsyncClient,
    auth_runtime: Runtime,
    authority: Authority,
    confidential_app: App,
    patients_token: dict[str, Any],
    patient_user: str,
) -> None:
    mine = patients_token["access_token"]
    itself = await _introspect(http, mine, {"Authorization": f"Bearer {mine}"})
    assert itself["active"] is True and itself["sub"] == patient_user
    # Another app's token, even one of a resource server, cannot vouch as a Bearer.
    other = _confidential(authority, "Other app")
    _mark_resource_server(auth_runtime, other)
    theirs = await login_token(http, other, patient_user, PATIENT_SCOPES)
    as_other = await _introspect(http, mine, {"Authorization": f"Bearer {theirs['access_token']}"})
    assert as_other == {"active": False}
    # The same app's other token is the app asking about its own token.
    second = await login_token(http, confidential_app, patient_user, PATIENT_SCOPES)
    same_app = await _introspect(http, mine, {"Authorization": f"Bearer {second['access_token']}"})
    assert same_app["active"] is True


@pytest.mark.parametrize("authorization", ["Basic /zp4", "Basic ", "Basic !!!"])
async def test_malformed_basic_credentials_are_401_not_500(
    http: httpx.AsyncClient, authorization: str
) -> None:
    for path in ("/auth/introspect", "/auth/revoke"):
        response = await http.post(
            path, data={"token": "x"}, headers={"Authorization": authorization}
        )
        assert response.status_code == 401, (path, response.text)
        assert response.json()["error"] == "invalid_client"
