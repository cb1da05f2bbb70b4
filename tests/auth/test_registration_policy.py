"""Dynamic registration is safe by default (RFC 7591): the attack of issue 10 (a stranger
registers a backend client with its own keys and exports the practice) through the real
app, the initial access token that lets an operator vouch for a client, the open policy,
the per-address limit, and the metadata checks (jwks, client_name, sizes)."""

from __future__ import annotations

import json
import secrets
import time
import warnings
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from joserfc.errors import SecurityWarning
from joserfc.jwk import ECKey, OctKey, RSAKey

from facade.app import create_app
from facade.auth.server import Authority
from facade.clock import FakeClock
from facade.runtime import Runtime, build_runtime
from facade.settings import Settings
from facade.store.models import OAuthClient
from facade.upstream.drchrono.sandbox.state import SandboxState
from tests.auth.conftest import (
    PASSWORD,
    REDIRECT_URI,
    App,
    JwksHost,
    StaticResolver,
    authorize_params,
    exchange,
    launch,
    pkce,
)
from tests.auth.test_backend_services import Backend, make_key
from tests.conftest import FACADE_BASE

KICKOFF = {"Accept": "application/fhir+json", "Prefer": "respond-async"}


def backend_metadata(key: RSAKey | ECKey, **extra: Any) -> dict[str, Any]:
    """What the attacker of issue 10 sent: its own key, client_credentials, system/*.rs."""
    return {
        "client_name": "Totally legit analytics",
        "token_endpoint_auth_method": "private_key_jwt",
        "grant_types": ["client_credentials"],
        "scope": "system/*.rs",
        "jwks": {"keys": [key.as_dict(private=False)]},
        **extra,
    }


def patient_app_metadata(scope: str = "launch/patient openid fhirUser patient/*.rs") -> dict:
    return {
        "client_name": "Patient app",
        "redirect_uris": [REDIRECT_URI],
        "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code"],
        "scope": scope,
    }


def row_of(authority: Authority, client_id: str) -> OAuthClient:
    found = authority.clients.find(client_id)
    assert found is not None
    return found.row


async def backend_token(http: httpx.AsyncClient, backend: Backend) -> httpx.Response:
    return await http.post("/auth/token", data=backend.form(scope="system/Patient.rs"))


# -- the attack: a self-registered backend client exports the practice -------------------------


async def test_self_registered_backend_client_is_held_and_cannot_export(
    http: httpx.AsyncClient, authority: Authority, clock: FakeClock
) -> None:
    key = make_key("ES384")
    response = await http.post("/auth/register", json=backend_metadata(key))
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["facade_status"] == "pending"
    assert "approves" in body["facade_status_reason"]
    row = row_of(authority, body["client_id"])
    assert row.status == "pending" and row.self_registered
    backend = Backend(body["client_id"], key, "ES384", clock)

    refused = await backend_token(http, backend)
    assert refused.status_code in (400, 401) and refused.json()["error"] == "invalid_client"
    export = await http.get("/fhir/Patient/$export", headers=KICKOFF)
    assert export.status_code == 401  # no token, no export

    # The operator approves: the same client now works end to end (the test can fail).
    assert authority.clients.set_status(body["client_id"], "active")
    granted = await backend_token(http, backend)
    assert granted.status_code == 200, granted.text
    bearer = {"Authorization": f"Bearer {granted.json()['access_token']}"}
    kicked = await http.get("/fhir/Patient/$export", headers={**KICKOFF, **bearer})
    assert kicked.status_code == 202, kicked.text


async def test_held_app_gets_an_error_page_at_authorize(http: httpx.AsyncClient) -> None:
    body = (await http.post("/auth/register", json=patient_app_metadata())).json()
    assert body["facade_status"] == "pending"
    params = authorize_params(App(body["client_id"]), code_challenge=pkce()[1])
    page = await http.get(f"/auth/authorize?{urlencode(params)}")
    assert page.status_code == 400 and "location" not in page.headers


# -- initial access tokens (RFC 7591 §3) ------------------------------------------------------


async def test_initial_access_token_makes_a_backend_client_active_once(
    http: httpx.AsyncClient, authority: Authority, clock: FakeClock
) -> None:
    token, _expires = authority.registration.initial_tokens.mint()
    key = make_key("RS384")
    vouched = {"Authorization": f"Bearer {token}"}
    response = await http.post("/auth/register", json=backend_metadata(key), headers=vouched)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["facade_status"] == "active" and "facade_status_reason" not in body
    assert row_of(authority, body["client_id"]).self_registered
    backend = Backend(body["client_id"], key, "RS384", clock)
    assert (await backend_token(http, backend)).status_code == 200

    again = await http.post("/auth/register", json=backend_metadata(key), headers=vouched)
    assert again.status_code == 401 and again.json()["error"] == "invalid_token"
    assert 'error="invalid_token"' in again.headers["www-authenticate"]


async def test_expired_or_unknown_initial_access_token_is_401(
    http: httpx.AsyncClient, authority: Authority, clock: FakeClock
) -> None:
    from datetime import timedelta

    token, _ = authority.registration.initial_tokens.mint(timedelta(minutes=10))
    clock.advance(601)
    for presented in (token, secrets.token_urlsafe(32), ""):
        response = await http.post(
            "/auth/register",
            json=backend_metadata(make_key("ES384")),
            headers={"Authorization": f"Bearer {presented}"},
        )
        assert response.status_code == 401, presented
        assert response.json()["error"] == "invalid_token"
    assert not any(row.self_registered for row in _all_clients(authority))


async def test_metadata_refused_with_a_token_leaves_the_token_unused(
    http: httpx.AsyncClient, authority: Authority
) -> None:
    token, _ = authority.registration.initial_tokens.mint()
    vouched = {"Authorization": f"Bearer {token}"}
    bad = await http.post("/auth/register", json={"client_name": ""}, headers=vouched)
    assert bad.status_code == 400
    good = await http.post(
        "/auth/register", json=backend_metadata(make_key("ES384")), headers=vouched
    )
    assert good.status_code == 201 and good.json()["facade_status"] == "active"


def _all_clients(authority: Authority) -> list[OAuthClient]:
    from sqlmodel import select

    with authority.clients._database.session() as session:
        return list(session.exec(select(OAuthClient)).all())


# -- FACADE_REGISTRATION=open ------------------------------------------------------------------


@pytest.fixture
async def open_runtime(
    settings: Settings,
    sandbox: SandboxState,
    clock: FakeClock,
    jwks_host: JwksHost,
    jwks_resolver: StaticResolver,
) -> AsyncIterator[Runtime]:
    built = await build_runtime(
        replace(settings, registration="open"),
        sandbox=sandbox,
        clock=clock,
        jwks_transport=httpx.ASGITransport(app=jwks_host.app),
        jwks_resolver=jwks_resolver,
    )
    yield built
    await built.aclose()


@pytest.fixture
async def open_http(open_runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(open_runtime.settings, open_runtime)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=FACADE_BASE
    ) as client:
        yield client


async def test_open_registration_starts_a_patient_scope_app_at_once(
    open_http: httpx.AsyncClient, open_runtime: Runtime, patient_id: str
) -> None:
    assert open_runtime.authorization is not None
    response = await open_http.post("/auth/register", json=patient_app_metadata())
    body = response.json()
    assert response.status_code == 201 and body["facade_status"] == "active", body
    open_runtime.authorization.users.create("pat", PASSWORD, f"Patient/{patient_id}")
    app = App(body["client_id"])
    done = await launch(open_http, app, "pat", "launch/patient openid patient/Patient.rs")
    assert (await exchange(open_http, app, done)).status_code == 200


@pytest.mark.parametrize(
    "metadata",
    [
        pytest.param(patient_app_metadata("openid fhirUser user/*.rs"), id="user-scope"),
        pytest.param(
            patient_app_metadata("patient/*.rs user/Patient.rs"), id="patient-and-user-scope"
        ),
        pytest.param(patient_app_metadata("system/*.rs"), id="system-scope"),
        pytest.param(patient_app_metadata(""), id="no-scope-so-any"),
        pytest.param(patient_app_metadata("patient/*.rs admin"), id="unknown-scope"),
        pytest.param("backend", id="client-credentials"),
    ],
)
async def test_open_registration_still_holds_user_system_and_backend_apps(
    open_http: httpx.AsyncClient, open_runtime: Runtime, metadata: Any
) -> None:
    if metadata == "backend":
        metadata = backend_metadata(make_key("ES384"), scope="system/Patient.rs")
    response = await open_http.post("/auth/register", json=metadata)
    assert response.status_code == 201, response.text
    assert response.json()["facade_status"] == "pending"


def test_registration_setting_and_its_deprecated_spelling() -> None:
    assert Settings().registration_mode == "approval"
    assert Settings.from_env({"FACADE_REGISTRATION": "open"}).registration_mode == "open"
    legacy = Settings.from_env({"FACADE_REGISTRATION_APPROVAL": "false"})
    assert legacy.registration_mode == "open"
    assert Settings.from_env({"FACADE_REGISTRATION_APPROVAL": "true"}).registration_mode == (
        "approval"
    )
    both = {"FACADE_REGISTRATION": "approval", "FACADE_REGISTRATION_APPROVAL": "false"}
    assert Settings.from_env(both).registration_mode == "approval"
    with pytest.raises(ValueError, match="FACADE_REGISTRATION"):
        Settings.from_env({"FACADE_REGISTRATION": "wide-open"})


# -- rate limit --------------------------------------------------------------------------------


async def test_300_quick_registrations_get_429_after_the_limit(
    http: httpx.AsyncClient, auth_runtime: Runtime, clock: FakeClock
) -> None:
    limit = auth_runtime.settings.registration_per_hour
    assert limit == 10
    started = time.perf_counter()
    answers = [await http.post("/auth/register", json=patient_app_metadata()) for _ in range(300)]
    elapsed = time.perf_counter() - started
    statuses = [a.status_code for a in answers]
    assert statuses[:limit] == [201] * limit
    assert statuses[limit:] == [429] * (300 - limit), elapsed
    refused = answers[-1]
    assert refused.json()["error"] == "temporarily_unavailable"
    assert 1 <= int(refused.headers["retry-after"]) <= 3600
    # Refused ones count too: garbage does not get through either.
    assert (await http.post("/auth/register", content=b"{")).status_code == 429
    # An operator's initial access token is not held back by the address's limit.
    assert auth_runtime.authorization is not None
    token, _ = auth_runtime.authorization.registration.initial_tokens.mint()
    vouched = await http.post(
        "/auth/register",
        json=patient_app_metadata(),
        headers={"Authorization": f"Bearer {token}"},
    )
    assert vouched.status_code == 201
    clock.advance(3600)
    assert (await http.post("/auth/register", json=patient_app_metadata())).status_code == 201


# -- metadata checks ---------------------------------------------------------------------------


def _with_keys(*keys: dict[str, Any]) -> dict[str, Any]:
    return backend_metadata(make_key("ES384")) | {"jwks": {"keys": list(keys)}}


def _private(key: RSAKey | ECKey) -> dict[str, Any]:
    return dict(key.as_dict(private=True))


def _short_rsa_key() -> dict[str, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SecurityWarning)  # the point of this key
        short = RSAKey.generate_key(1024, parameters={"kid": "a", "alg": "RS384"})
    return dict(short.as_dict(private=False))


BAD_JWKS = {
    "private-rsa-key": lambda: _with_keys(_private(make_key("RS384"))),
    "private-ec-key": lambda: _with_keys(_private(make_key("ES384"))),
    "hs256-oct-key": lambda: _with_keys(
        {**OctKey.generate_key(256).as_dict(), "alg": "HS256", "kid": "k1"}
    ),
    "empty-keys": lambda: _with_keys(),
    "not-a-set": lambda: backend_metadata(make_key("ES384")) | {"jwks": ["x"]},
    "unknown-kty": lambda: _with_keys({"kty": "OKP", "crv": "Ed25519", "x": "AA", "kid": "k"}),
    "rs256-only": lambda: _with_keys(
        RSAKey.generate_key(2048, parameters={"alg": "RS256", "kid": "a"}).as_dict(private=False)
    ),
    "p256-only": lambda: _with_keys(
        ECKey.generate_key("P-256", parameters={"kid": "a"}).as_dict(private=False)
    ),
    "no-kid": lambda: _with_keys(ECKey.generate_key("P-384").as_dict(private=False)),
    "rsa-1024": lambda: _with_keys(_short_rsa_key()),
    "junk-key": lambda: _with_keys({"kty": "EC", "crv": "P-384", "x": "AA", "y": "AA", "kid": "a"}),
    "both-jwks-and-uri": lambda: (
        backend_metadata(make_key("ES384")) | {"jwks_uri": "http://keys.example/x/jwks.json"}
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_JWKS))
async def test_bad_jwks_is_invalid_client_metadata(http: httpx.AsyncClient, case: str) -> None:
    response = await http.post("/auth/register", json=BAD_JWKS[case]())
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_client_metadata"


async def test_good_jwks_may_carry_extra_public_keys(http: httpx.AsyncClient) -> None:
    old = RSAKey.generate_key(2048, parameters={"alg": "RS256", "kid": "old"})
    other = old.as_dict(private=False)
    usable = make_key("ES384").as_dict(private=False)
    response = await http.post("/auth/register", json=_with_keys(other, usable))
    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    "name",
    [
        None,
        "",
        "   ",
        "<script>alert(1)</script>",
        "Bell\x07app",
        "Line\nbreak",
        "Evil\u202eppa",  # right-to-left override: shows a different name
        "Zero\u200bwidth",
        "x" * 101,
        42,
    ],
)
async def test_client_name_is_required_printable_and_bounded(
    http: httpx.AsyncClient, name: Any
) -> None:
    metadata = patient_app_metadata()
    metadata["client_name"] = name
    response = await http.post("/auth/register", json=metadata)
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_client_metadata"


async def test_a_plain_unicode_client_name_is_kept(
    http: httpx.AsyncClient, authority: Authority
) -> None:
    metadata = patient_app_metadata() | {"client_name": "Café Santé – Ärzte & Co. (v2)"}
    body = (await http.post("/auth/register", json=metadata)).json()
    assert row_of(authority, body["client_id"]).name == "Café Santé – Ärzte & Co. (v2)"


async def test_body_and_lists_are_bounded(http: httpx.AsyncClient) -> None:
    huge = patient_app_metadata() | {"padding": "x" * 70_000}
    too_large = await http.post("/auth/register", json=huge)
    assert too_large.status_code == 413 and too_large.json()["error"] == "invalid_request"
    many = patient_app_metadata() | {
        "redirect_uris": [f"https://app.example/cb{i}" for i in range(11)]
    }
    refused = await http.post("/auth/register", json=many)
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_redirect_uri"
    long_uri = patient_app_metadata() | {"redirect_uris": ["https://app.example/" + "a" * 1000]}
    refused = await http.post("/auth/register", json=long_uri)
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_redirect_uri"
    scopes = patient_app_metadata(" ".join(f"patient/T{i}.rs" for i in range(51)))
    refused = await http.post("/auth/register", json=scopes)
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_client_metadata"


@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", "text/plain", None])
async def test_a_registration_that_is_not_json_is_415(
    http: httpx.AsyncClient, content_type: str | None
) -> None:
    """RFC 7591 §3.1: the client metadata is sent as application/json, nothing else."""
    body = json.dumps(patient_app_metadata()).encode()
    headers = {"Content-Type": content_type} if content_type else {}
    refused = await http.post("/auth/register", content=body, headers=headers)
    assert refused.status_code == 415
    assert refused.json()["error"] == "invalid_request"
    accepted = await http.post(
        "/auth/register",
        content=body,
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert accepted.status_code == 201, accepted.text
