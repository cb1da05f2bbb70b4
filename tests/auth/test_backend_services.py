"""SMART Backend Services: client_credentials with private_key_jwt (RS384 and ES384, keys
inline or at a jwks_uri), and every refusal: wrong grant type, wrong assertion type, bad
signature, expired, exp beyond five minutes, wrong aud, replayed jti, unknown kid, iss≠sub."""

from __future__ import annotations

import secrets
import time
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from facade.auth.server import Authority
from facade.clock import FakeClock
from tests.auth.conftest import TOKEN_URL, JwksHost

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
SCOPE = "system/Patient.rs system/Observation.rs"


def make_key(alg: str) -> RSAKey | ECKey:
    kid = secrets.token_hex(6)
    params = {"kid": kid, "alg": alg, "use": "sig"}
    if alg == "RS384":
        return RSAKey.generate_key(2048, parameters=params, private=True)
    return ECKey.generate_key("P-384", parameters=params, private=True)


class Backend:
    def __init__(self, client_id: str, key: RSAKey | ECKey, alg: str, clock: FakeClock):
        self.client_id = client_id
        self.key = key
        self.alg = alg
        self.clock = clock

    def assertion(self, **overrides: Any) -> str:
        now = int(self.clock.now().timestamp())
        claims: dict[str, Any] = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": TOKEN_URL,
            "exp": now + 300,
            "jti": secrets.token_hex(32),
        }
        header = {"alg": self.alg, "kid": self.key.kid, "typ": "JWT"}
        header.update(overrides.pop("header", {}))
        key = overrides.pop("key", None) or self.key
        claims.update(overrides)
        return jwt.encode(header, {k: v for k, v in claims.items() if v is not None}, key,
                          algorithms=[header["alg"]])  # fmt: skip

    def form(self, **overrides: Any) -> dict[str, str]:
        form = {
            "grant_type": "client_credentials",
            "scope": SCOPE,
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": self.assertion(),
        }
        form.update(overrides)
        return form


@pytest.fixture(params=["RS384-inline", "ES384-inline", "RS384-url", "ES384-url"])
def backend(
    request: pytest.FixtureRequest, authority: Authority, jwks_host: JwksHost, clock: FakeClock
) -> Backend:
    alg, where = request.param.split("-")
    key = make_key(alg)
    public = {"keys": [key.as_dict(private=False)]}
    jwks_uri = ""
    if where == "url":
        name = secrets.token_hex(4)
        jwks_host.sets[name] = public
        jwks_uri = jwks_host.url(name)
    made = authority.clients.register(
        name="Bulk client",
        auth_method="private_key_jwt",
        redirect_uris=[],
        scope="system/*.rs",
        grant_types=["client_credentials"],
        jwks=None if jwks_uri else public,
        jwks_uri=jwks_uri,
    )
    return Backend(made.client.client_id, key, alg, clock)


async def test_valid_assertion_gets_a_short_lived_system_token(
    http: httpx.AsyncClient, backend: Backend, authority: Authority
) -> None:
    response = await http.post(
        "/auth/token", data=backend.form(), headers={"Accept": "application/json"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"].lower() == "bearer"
    assert body["expires_in"] == 300
    assert body["scope"] == SCOPE
    assert "refresh_token" not in body and "patient" not in body
    grant = authority.tokens.grant_of(body["access_token"])
    assert grant.backend and grant.client_id == backend.client_id


async def test_not_a_grant_type_is_exactly_400(http: httpx.AsyncClient, backend: Backend) -> None:
    response = await http.post("/auth/token", data=backend.form(grant_type="not_a_grant_type"))
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"


async def test_not_an_assertion_type_is_refused(http: httpx.AsyncClient, backend: Backend) -> None:
    response = await http.post(
        "/auth/token", data=backend.form(client_assertion_type="not_an_assertion_type")
    )
    assert response.status_code in (400, 401)
    assert response.json()["error"] == "invalid_client"


@pytest.mark.parametrize(
    "case",
    ["bad_iss", "expired", "too_long", "wrong_aud", "unknown_kid", "other_key", "no_jti",
     "garbage", "hs256"],
)  # fmt: skip
async def test_invalid_assertions_are_refused(
    http: httpx.AsyncClient, backend: Backend, case: str
) -> None:
    now = int(backend.clock.now().timestamp())
    assertion = {
        "bad_iss": lambda: backend.assertion(iss="not_a_valid_iss"),
        "expired": lambda: backend.assertion(exp=now - 120),
        "too_long": lambda: backend.assertion(exp=now + 3600),
        "wrong_aud": lambda: backend.assertion(aud="https://elsewhere.example/token"),
        "unknown_kid": lambda: backend.assertion(header={"kid": "nobody"}),
        "other_key": lambda: backend.assertion(key=make_key(backend.alg)),
        "no_jti": lambda: backend.assertion(jti=None),
        "garbage": lambda: "not.a.jwt",
        "hs256": lambda: jwt.encode(
            {"alg": "HS256", "kid": backend.key.kid},
            {
                "iss": backend.client_id,
                "sub": backend.client_id,
                "aud": TOKEN_URL,
                "exp": now + 60,
                "jti": "x",
            },
            __import__("joserfc.jwk", fromlist=["OctKey"]).OctKey.generate_key(256),
        ),  # fmt: skip
    }[case]()
    response = await http.post("/auth/token", data=backend.form(client_assertion=assertion))
    assert response.status_code in (400, 401), (case, response.text)
    assert response.json()["error"] == "invalid_client"


async def test_replayed_jti_is_refused(http: httpx.AsyncClient, backend: Backend) -> None:
    assertion = backend.assertion()
    first = await http.post("/auth/token", data=backend.form(client_assertion=assertion))
    assert first.status_code == 200
    second = await http.post("/auth/token", data=backend.form(client_assertion=assertion))
    assert second.status_code in (400, 401) and second.json()["error"] == "invalid_client"


async def test_only_registered_system_scopes_are_granted(
    http: httpx.AsyncClient, backend: Backend
) -> None:
    mixed = await http.post(
        "/auth/token", data=backend.form(scope="system/Patient.rs patient/Patient.rs user/*.rs")
    )
    assert mixed.status_code == 200 and mixed.json()["scope"] == "system/Patient.rs"
    none = await http.post("/auth/token", data=backend.form(scope="patient/Patient.rs"))
    assert none.status_code == 400 and none.json()["error"] == "invalid_scope"
    wider = await http.post("/auth/token", data=backend.form(scope="system/Patient.cruds"))
    assert wider.status_code == 400


async def test_jwks_uri_is_cached_by_max_age_and_refetched_for_a_new_kid(
    http: httpx.AsyncClient, authority: Authority, jwks_host: JwksHost, clock: FakeClock
) -> None:
    old, new = make_key("ES384"), make_key("ES384")
    jwks_host.sets["rot"] = {"keys": [old.as_dict(private=False)]}
    made = authority.clients.register(
        name="rotating", auth_method="private_key_jwt", redirect_uris=[],
        scope="system/*.rs", jwks_uri=jwks_host.url("rot"),
    )  # fmt: skip
    client = Backend(made.client.client_id, old, "ES384", clock)
    assert (await http.post("/auth/token", data=client.form())).status_code == 200
    fetched = jwks_host.requests
    assert (await http.post("/auth/token", data=client.form())).status_code == 200
    assert jwks_host.requests == fetched  # cached (max-age=300)
    jwks_host.sets["rot"] = {"keys": [new.as_dict(private=False)]}
    rotated = Backend(made.client.client_id, new, "ES384", clock)
    assert (await http.post("/auth/token", data=rotated.form())).status_code == 200
    clock.advance(301)
    assert (await http.post("/auth/token", data=client.form())).status_code in (400, 401)


async def test_unreachable_or_insecure_jwks_uri_is_invalid_client(
    http: httpx.AsyncClient, authority: Authority, clock: FakeClock
) -> None:
    key = make_key("RS384")
    made = authority.clients.register(
        name="gone", auth_method="private_key_jwt", redirect_uris=[],
        scope="system/*.rs", jwks_uri="http://keys.example/missing/jwks.json",
    )  # fmt: skip
    client = Backend(made.client.client_id, key, "RS384", clock)
    response = await http.post("/auth/token", data=client.form())
    assert response.status_code in (400, 401) and response.json()["error"] == "invalid_client"


async def test_symmetric_clients_cannot_use_client_credentials(
    http: httpx.AsyncClient, confidential_app: Any
) -> None:
    from tests.auth.conftest import basic

    response = await http.post(
        "/auth/token",
        data={"grant_type": "client_credentials", "scope": SCOPE},
        headers=basic(confidential_app),
    )
    assert response.status_code in (400, 401)
    assert time.time() > 0
