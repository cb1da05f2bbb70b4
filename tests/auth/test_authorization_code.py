"""Standalone launch with PKCE through the login and consent pages, and every refusal
smart.md lists: bad aud, unregistered redirect, plain PKCE, bad code, bad client, PKCE
verifier missing/empty/wrong/equal to the challenge, code reuse and expiry."""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
from joserfc import jwt
from joserfc.jwk import KeySet

from facade.auth.server import Authority
from facade.clock import FakeClock
from tests.auth.conftest import (
    PATIENT_SCOPES,
    REDIRECT_URI,
    App,
    authorize_params,
    basic,
    exchange,
    launch,
    pkce,
)
from tests.conftest import FHIR_BASE


async def test_standalone_patient_launch_returns_smart_token_response(
    http: httpx.AsyncClient, confidential_app: App, patient_user: str, patient_id: str
) -> None:
    done = await launch(http, confidential_app, patient_user)
    assert done.location.startswith(REDIRECT_URI + "?")
    assert done.query["state"] == [done.state]
    assert "error" not in done.query
    response = await exchange(http, confidential_app, done)
    assert response.status_code == 200, response.text
    assert "no-store" in response.headers["cache-control"]
    assert "no-cache" in response.headers["pragma"]
    body = response.json()
    assert body["token_type"].lower() == "bearer"
    assert isinstance(body["expires_in"], int) and body["expires_in"] > 0
    assert set(body["scope"].split()) == set(PATIENT_SCOPES.split())
    assert body["patient"] == patient_id
    assert body["need_patient_banner"] is True
    assert body["smart_style_url"].endswith("/auth/smart-style.json")
    assert body["refresh_token"] and body["id_token"] and body["access_token"]


async def test_id_token_is_rs256_with_kid_iss_aud_and_fhir_user(
    http: httpx.AsyncClient, confidential_app: App, patient_user: str, patient_id: str
) -> None:
    done = await launch(http, confidential_app, patient_user, nonce="n-123")
    body = (await exchange(http, confidential_app, done)).json()
    keys = KeySet.import_key_set((await http.get("/auth/jwks")).json())
    header = jwt.decode(body["id_token"], keys, algorithms=["RS256"]).header
    claims = jwt.decode(body["id_token"], keys, algorithms=["RS256"]).claims
    assert header["alg"] == "RS256" and header["kid"] in {k.kid for k in keys.keys}
    assert claims["iss"] == FHIR_BASE
    assert claims["aud"] == confidential_app.client_id
    assert claims["sub"] == patient_user
    assert claims["fhirUser"] == f"Patient/{patient_id}"
    assert claims["nonce"] == "n-123"
    access = jwt.decode(body["access_token"], keys, algorithms=["RS256"]).claims
    assert access["patient"] == patient_id and access["aud"] == FHIR_BASE


async def test_public_client_with_pkce_gets_tokens_and_cors(
    http: httpx.AsyncClient, public_app: App, patient_user: str
) -> None:
    done = await launch(http, public_app, patient_user)
    response = await http.post(
        "/auth/token",
        data={
            "grant_type": "authorization_code",
            "code": done.code,
            "redirect_uri": REDIRECT_URI,
            "code_verifier": done.verifier,
            "client_id": public_app.client_id,
        },
        headers={"Origin": "https://app.example"},
    )
    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] == "*"
    body = response.json()
    assert body["id_token"] and body["refresh_token"]


async def test_unticked_scopes_are_not_granted_and_offline_access_is_explained(
    http: httpx.AsyncClient, confidential_app: App, patient_user: str
) -> None:
    verifier, challenge = pkce()
    params = authorize_params(confidential_app, code_challenge=challenge)
    await http.get(f"/auth/authorize?{urlencode(params)}")
    page = await http.get("/auth/login")
    from tests.auth.conftest import PASSWORD, csrf_of

    await http.post(
        "/auth/login",
        data={"csrf_token": csrf_of(page.text), "username": patient_user, "password": PASSWORD},
    )
    consent = await http.get("/auth/consent")
    assert "long-term access" in consent.text
    assert 'id="offline-notice"' in consent.text
    done = await launch(
        http, confidential_app, patient_user, untick=("patient/Condition.rs", "offline_access")
    )
    body = (await exchange(http, confidential_app, done)).json()
    assert "patient/Condition.rs" not in body["scope"].split()
    assert "offline_access" not in body["scope"].split()
    assert "refresh_token" not in body


async def test_granular_categories_replace_the_resource_level_scope(
    http: httpx.AsyncClient, confidential_app: App, patient_user: str
) -> None:
    vitals = (
        "patient/Observation.rs?category="
        "http://terminology.hl7.org/CodeSystem/observation-category|vital-signs"
    )
    problems = (
        "patient/Condition.rs?category="
        "http://terminology.hl7.org/CodeSystem/condition-category|problem-list-item"
    )
    done = await launch(http, confidential_app, patient_user, tick=(vitals, problems))
    granted = (await exchange(http, confidential_app, done)).json()["scope"].split()
    assert vitals in granted and problems in granted
    assert "patient/Observation.rs" not in granted
    assert "patient/Condition.rs" not in granted
    assert "patient/Patient.rs" in granted


async def test_invalid_aud_never_yields_a_code(
    http: httpx.AsyncClient, confidential_app: App, patient_user: str
) -> None:
    _verifier, challenge = pkce()
    params = authorize_params(
        confidential_app, code_challenge=challenge, aud="https://inferno.healthit.gov/invalid_aud"
    )
    response = await http.get(f"/auth/authorize?{urlencode(params)}")
    assert response.status_code == 302
    query = parse_qs(urlsplit(response.headers["location"]).query)
    assert "code" not in query
    assert query["error"] == ["invalid_request"]
    assert query["state"] == [params["state"]]


async def test_unregistered_redirect_uri_gets_an_error_page_and_no_redirect(
    http: httpx.AsyncClient, confidential_app: App
) -> None:
    _verifier, challenge = pkce()
    for redirect in ("https://evil.example/callback", REDIRECT_URI + "/x", ""):
        params = authorize_params(confidential_app, code_challenge=challenge, redirect_uri=redirect)
        response = await http.get(f"/auth/authorize?{urlencode(params)}")
        assert response.status_code == 400
        assert "location" not in response.headers
        assert response.headers["content-type"].startswith("text/html")


async def test_unknown_client_gets_an_error_page(http: httpx.AsyncClient) -> None:
    params = authorize_params(App("no-such-client"), code_challenge=pkce()[1])
    response = await http.get(f"/auth/authorize?{urlencode(params)}")
    assert response.status_code == 400 and "location" not in response.headers


async def test_pkce_is_required_and_plain_is_refused(
    http: httpx.AsyncClient, confidential_app: App
) -> None:
    verifier, challenge = pkce()
    cases = [
        authorize_params(confidential_app),  # no challenge
        authorize_params(confidential_app, code_challenge=verifier, code_challenge_method="plain"),
        {
            **authorize_params(confidential_app, code_challenge=challenge),
            "code_challenge_method": "",
        },
    ]
    for params in cases:
        response = await http.get(f"/auth/authorize?{urlencode(params)}")
        assert response.status_code == 302, response.text
        query = parse_qs(urlsplit(response.headers["location"]).query)
        assert "code" not in query and query["error"] == ["invalid_request"]


async def test_authorize_by_post_is_accepted(
    http: httpx.AsyncClient, confidential_app: App
) -> None:
    params = authorize_params(confidential_app, code_challenge=pkce()[1])
    response = await http.post("/auth/authorize", data=params)
    assert response.status_code == 303
    assert response.headers["location"] == "/auth/login"


async def test_bad_code_is_exactly_400_invalid_grant(
    http: httpx.AsyncClient, confidential_app: App, patient_user: str
) -> None:
    done = await launch(http, confidential_app, patient_user)
    response = await exchange(http, confidential_app, done, code="BAD_CODE")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"
    assert "no-store" in response.headers["cache-control"]


async def test_bad_client_id_is_refused(
    http: httpx.AsyncClient, confidential_app: App, public_app: App, patient_user: str
) -> None:
    done = await launch(http, confidential_app, patient_user)
    bad = App("BAD_CLIENT_ID", confidential_app.secret)
    response = await exchange(http, bad, done)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert response.headers["www-authenticate"].lower().startswith("basic")
    wrong_secret = App(confidential_app.client_id, "not-the-secret")
    assert (await exchange(http, wrong_secret, done)).status_code == 401
    public_done = await launch(http, public_app, patient_user)
    response = await exchange(http, App("BAD_CLIENT_ID"), public_done)
    assert response.status_code in (400, 401)
    assert response.json()["error"] == "invalid_client"


async def test_confidential_client_cannot_skip_authentication(
    http: httpx.AsyncClient, confidential_app: App, patient_user: str
) -> None:
    done = await launch(http, confidential_app, patient_user)
    response = await exchange(http, App(confidential_app.client_id), done)
    assert response.status_code in (400, 401)


async def test_pkce_verifier_negatives(
    http: httpx.AsyncClient, confidential_app: App, patient_user: str
) -> None:
    for verifier in (None, "", pkce()[0], "challenge"):
        done = await launch(http, confidential_app, patient_user)
        value = done.challenge if verifier == "challenge" else verifier
        response = await exchange(http, confidential_app, done, code_verifier=value)
        assert response.status_code in (400, 401), (verifier, response.text)
        assert response.json()["error"] in ("invalid_request", "invalid_grant")


async def test_code_is_single_use_and_reuse_revokes_what_it_issued(
    http: httpx.AsyncClient, confidential_app: App, patient_user: str
) -> None:
    done = await launch(http, confidential_app, patient_user)
    first = await exchange(http, confidential_app, done)
    assert first.status_code == 200
    again = await exchange(http, confidential_app, done)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    introspected = await http.post(
        "/auth/introspect",
        data={"token": first.json()["access_token"]},
        headers=basic(confidential_app),
    )
    assert introspected.json() == {"active": False}


async def test_code_expires_after_60_seconds(
    http: httpx.AsyncClient, confidential_app: App, patient_user: str, clock: FakeClock
) -> None:
    done = await launch(http, confidential_app, patient_user)
    clock.advance(61)
    response = await exchange(http, confidential_app, done)
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"


async def test_redirect_uri_must_match_at_the_token_endpoint(
    http: httpx.AsyncClient, authority: Authority, patient_user: str
) -> None:
    made = authority.clients.register(
        name="two", auth_method="client_secret_post",
        redirect_uris=[REDIRECT_URI, "https://app.example/other"], scope="",
    )  # fmt: skip
    app = App(made.client.client_id, made.client_secret)
    done = await launch(http, app, patient_user)
    response = await http.post(
        "/auth/token",
        data={
            "grant_type": "authorization_code", "code": done.code,
            "redirect_uri": "https://app.example/other", "code_verifier": done.verifier,
            "client_id": app.client_id, "client_secret": app.secret,
        },
    )  # fmt: skip
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"


async def test_unknown_grant_type_is_exactly_400(
    http: httpx.AsyncClient, confidential_app: App
) -> None:
    response = await http.post(
        "/auth/token", data={"grant_type": "not_a_grant_type"}, headers=basic(confidential_app)
    )
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"


async def test_deny_redirects_with_access_denied(
    http: httpx.AsyncClient, confidential_app: App, patient_user: str
) -> None:
    from tests.auth.conftest import PASSWORD, csrf_of

    params = authorize_params(confidential_app, code_challenge=pkce()[1])
    await http.get(f"/auth/authorize?{urlencode(params)}")
    page = await http.get("/auth/login")
    await http.post(
        "/auth/login",
        data={"csrf_token": csrf_of(page.text), "username": patient_user, "password": PASSWORD},
    )
    consent = await http.get("/auth/consent")
    response = await http.post(
        "/auth/consent", data={"csrf_token": csrf_of(consent.text), "decision": "deny"}
    )
    query = parse_qs(urlsplit(response.headers["location"]).query)
    assert query["error"] == ["access_denied"] and "code" not in query


async def test_forms_refuse_a_missing_csrf_token(
    http: httpx.AsyncClient, confidential_app: App, patient_user: str
) -> None:
    params = authorize_params(confidential_app, code_challenge=pkce()[1])
    await http.get(f"/auth/authorize?{urlencode(params)}")
    response = await http.post(
        "/auth/login", data={"username": patient_user, "password": "x", "csrf_token": "forged"}
    )
    assert response.status_code == 403
