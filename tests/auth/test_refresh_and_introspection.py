"""Refresh tokens (only with offline/online access, rotated, reuse revokes the family, a scope
may only narrow), introspection (fields, exactly {"active": false}) and revocation."""

from __future__ import annotations

import httpx

from tests.auth.conftest import App, basic, exchange, launch

OFFLINE = "launch/patient openid fhirUser offline_access patient/Patient.rs patient/Observation.rs"


async def _tokens(http: httpx.AsyncClient, app: App, user: str, scope: str = OFFLINE) -> dict:
    done = await launch(http, app, user, scope)
    response = await exchange(http, app, done)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def _refresh(
    http: httpx.AsyncClient, app: App, refresh_token: str, **extra: str
) -> httpx.Response:
    return await http.post(
        "/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": refresh_token, **extra},
        headers=basic(app),
    )


async def _introspect(http: httpx.AsyncClient, app: App, token: str) -> dict:
    response = await http.post("/auth/introspect", data={"token": token}, headers=basic(app))
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_refresh_rotates_and_keeps_the_context(
    http: httpx.AsyncClient, confidential_app: App, patient_user: str, patient_id: str
) -> None:
    first = await _tokens(http, confidential_app, patient_user)
    response = await _refresh(http, confidential_app, first["refresh_token"])
    assert response.status_code == 200, response.text
    assert "no-store" in response.headers["cache-control"]
    second = response.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["patient"] == patient_id
    assert set(second["scope"].split()) == set(OFFLINE.split())
    assert (await _introspect(http, confidential_app, second["access_token"]))["active"] is True


async def test_reusing_a_rotated_refresh_token_revokes_the_family(
    http: httpx.AsyncClient, confidential_app: App, patient_user: str
) -> None:
    first = await _tokens(http, confidential_app, patient_user)
    second = (await _refresh(http, confidential_app, first["refresh_token"])).json()
    replay = await _refresh(http, confidential_app, first["refresh_token"])
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    assert (await _refresh(http, confidential_app, second["refresh_token"])).status_code == 400
    for access in (first["access_token"], second["access_token"]):
        assert await _introspect(http, confidential_app, access) == {"active": False}


async def test_refresh_scope_may_only_narrow(
    http: httpx.AsyncClient, confidential_app: App, patient_user: str
) -> None:
    first = await _tokens(http, confidential_app, patient_user)
    wider = await _refresh(
        http, confidential_app, first["refresh_token"], scope="patient/Condition.rs"
    )
    assert wider.status_code == 400 and wider.json()["error"] == "invalid_scope"
    narrower = await _refresh(
        http, confidential_app, first["refresh_token"], scope="patient/Patient.rs offline_access"
    )
    assert narrower.status_code == 200, narrower.text
    assert narrower.json()["scope"] == "patient/Patient.rs offline_access"


async def test_no_refresh_token_without_offline_or_online_access(
    http: httpx.AsyncClient, confidential_app: App, patient_user: str
) -> None:
    body = await _tokens(http, confidential_app, patient_user, "launch/patient patient/Patient.rs")
    assert "refresh_token" not in body and "id_token" not in body
    online = await _tokens(
        http, confidential_app, patient_user, "launch/patient online_access patient/Patient.rs"
    )
    assert online["refresh_token"]


async def test_invalid_and_foreign_refresh_tokens_are_refused(
    http: httpx.AsyncClient, confidential_app: App, public_app: App, patient_user: str
) -> None:
    assert (await _refresh(http, confidential_app, "not-a-token")).status_code == 400
    public_tokens = await _tokens(http, public_app, patient_user)
    stolen = await _refresh(http, confidential_app, public_tokens["refresh_token"])
    assert stolen.status_code == 400 and stolen.json()["error"] == "invalid_grant"


async def test_introspection_of_an_active_token_matches_the_launch(
    http: httpx.AsyncClient, confidential_app: App, patient_user: str, patient_id: str
) -> None:
    body = await _tokens(http, confidential_app, patient_user)
    answer = await _introspect(http, confidential_app, body["access_token"])
    assert answer["active"] is True
    assert answer["client_id"] == confidential_app.client_id
    assert sorted(answer["scope"].split()) == sorted(body["scope"].split())
    assert answer["patient"] == patient_id
    assert answer["fhirUser"] == f"Patient/{patient_id}"
    assert isinstance(answer["exp"], int)
    from joserfc import jwt

    id_claims = jwt.decode(
        body["id_token"],
        __import__("joserfc.jwk", fromlist=["KeySet"]).KeySet.import_key_set(
            (await http.get("/auth/jwks")).json()
        ),
    ).claims
    assert answer["iss"] == id_claims["iss"] and answer["sub"] == id_claims["sub"]


async def test_introspection_of_an_invalid_token_is_exactly_active_false(
    http: httpx.AsyncClient, confidential_app: App
) -> None:
    assert await _introspect(http, confidential_app, "invalid_token_value") == {"active": False}
    response = await http.post(
        "/auth/introspect", data={"token": ""}, headers=basic(confidential_app)
    )
    assert response.json() == {"active": False}


async def test_introspection_requires_a_caller(
    http: httpx.AsyncClient, confidential_app: App, public_app: App, patient_user: str
) -> None:
    body = await _tokens(http, confidential_app, patient_user)
    anonymous = await http.post("/auth/introspect", data={"token": body["access_token"]})
    assert anonymous.status_code == 401
    as_public = await http.post(
        "/auth/introspect",
        data={"token": body["access_token"], "client_id": public_app.client_id},
    )
    assert as_public.status_code == 401
    with_bearer = await http.post(
        "/auth/introspect",
        data={"token": body["access_token"]},
        headers={"Authorization": f"Bearer {body['access_token']}"},
    )
    assert with_bearer.status_code == 200 and with_bearer.json()["active"] is True


async def test_revocation_of_refresh_and_access_tokens(
    http: httpx.AsyncClient, confidential_app: App, patient_user: str
) -> None:
    body = await _tokens(http, confidential_app, patient_user)
    revoked = await http.post(
        "/auth/revoke", data={"token": body["refresh_token"]}, headers=basic(confidential_app)
    )
    assert revoked.status_code == 200
    refused = await _refresh(http, confidential_app, body["refresh_token"])
    assert refused.status_code in (400, 401)
    assert await _introspect(http, confidential_app, body["access_token"]) == {"active": False}

    other = await _tokens(http, confidential_app, patient_user)
    await http.post(
        "/auth/revoke", data={"token": other["access_token"]}, headers=basic(confidential_app)
    )
    assert await _introspect(http, confidential_app, other["access_token"]) == {"active": False}
    unknown = await http.post(
        "/auth/revoke", data={"token": "whatever"}, headers=basic(confidential_app)
    )
    assert unknown.status_code == 200


async def test_revocation_needs_the_owning_client(
    http: httpx.AsyncClient, confidential_app: App, public_app: App, patient_user: str
) -> None:
    body = await _tokens(http, confidential_app, patient_user)
    await http.post(
        "/auth/revoke", data={"token": body["access_token"], "client_id": public_app.client_id}
    )
    assert (await _introspect(http, confidential_app, body["access_token"]))["active"] is True
    assert (await http.post("/auth/revoke", data={"token": "x"})).status_code == 401
