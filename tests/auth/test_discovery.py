"""Discovery: every SMART 2.2 field, S256 only, CORS; the OpenID configuration; the JWKS."""

from __future__ import annotations

import httpx

from tests.auth.conftest import TOKEN_URL
from tests.conftest import FACADE_BASE, FHIR_BASE

REQUIRED_CAPABILITIES = {
    "launch-ehr", "launch-standalone", "authorize-post", "client-public",
    "client-confidential-symmetric", "client-confidential-asymmetric", "sso-openid-connect",
    "context-banner", "context-style", "context-ehr-patient", "context-ehr-encounter",
    "context-standalone-patient", "permission-offline", "permission-online",
    "permission-patient", "permission-user", "permission-v1", "permission-v2",
}  # fmt: skip


async def test_smart_configuration_has_every_field_inferno_checks(http: httpx.AsyncClient) -> None:
    response = await http.get(
        "/fhir/.well-known/smart-configuration",
        headers={"Accept": "application/json", "Origin": "https://inferno.example"},
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["access-control-allow-origin"] == "*"
    config = response.json()
    assert config["issuer"] == FHIR_BASE
    assert config["jwks_uri"] == f"{FACADE_BASE}/auth/jwks"
    assert config["authorization_endpoint"] == f"{FACADE_BASE}/auth/authorize"
    assert config["token_endpoint"] == TOKEN_URL
    assert config["introspection_endpoint"] == f"{FACADE_BASE}/auth/introspect"
    assert config["revocation_endpoint"] == f"{FACADE_BASE}/auth/revoke"
    assert config["registration_endpoint"] == f"{FACADE_BASE}/auth/register"
    assert set(config["token_endpoint_auth_methods_supported"]) == {
        "client_secret_basic",
        "client_secret_post",
        "private_key_jwt",
        "none",
    }
    assert set(config["token_endpoint_auth_signing_alg_values_supported"]) == {"RS384", "ES384"}
    assert {"authorization_code", "refresh_token", "client_credentials"} <= set(
        config["grant_types_supported"]
    )
    assert config["code_challenge_methods_supported"] == ["S256"]
    assert config["response_types_supported"] == ["code"]
    assert set(config["capabilities"]) >= REQUIRED_CAPABILITIES
    assert {"openid", "fhirUser", "launch/patient", "offline_access", "patient/*.rs"} <= set(
        config["scopes_supported"]
    )


async def test_openid_configuration(http: httpx.AsyncClient) -> None:
    config = (await http.get("/fhir/.well-known/openid-configuration")).json()
    assert config["issuer"] == FHIR_BASE
    assert config["id_token_signing_alg_values_supported"] == ["RS256"]
    assert config["subject_types_supported"] == ["public"]
    assert "fhirUser" in config["claims_supported"]
    assert config["jwks_uri"] == f"{FACADE_BASE}/auth/jwks"


async def test_jwks_publishes_public_rs256_keys_only(http: httpx.AsyncClient) -> None:
    keys = (await http.get("/auth/jwks")).json()["keys"]
    assert keys and all(k["kty"] == "RSA" and k["alg"] == "RS256" and k["kid"] for k in keys)
    assert all("d" not in k and "p" not in k for k in keys)


async def test_smart_style_is_json(http: httpx.AsyncClient) -> None:
    response = await http.get("/auth/smart-style.json")
    assert response.status_code == 200
    assert "color_background" in response.json()
