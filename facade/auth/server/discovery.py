"""The discovery documents: SMART's .well-known/smart-configuration and OpenID Connect's.

Built from the endpoint URLs and the resource types facade serves, never written twice.
`code_challenge_methods_supported` is S256 alone: `plain` must never appear.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from facade.auth.scopes import CONTEXT_SCOPE_ORDER

CAPABILITIES = [
    "launch-ehr",
    "launch-standalone",
    "authorize-post",
    "client-public",
    "client-confidential-symmetric",
    "client-confidential-asymmetric",
    "sso-openid-connect",
    "context-banner",
    "context-style",
    "context-ehr-patient",
    "context-ehr-encounter",
    "context-standalone-patient",
    "permission-offline",
    "permission-online",
    "permission-patient",
    "permission-user",
    "permission-v1",
    "permission-v2",
]
AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]
ASSERTION_ALGORITHMS = ["RS384", "ES384"]


@dataclass(frozen=True)
class AuthEndpoints:
    """Where everything lives. `issuer` is the FHIR base; the rest sit under {host}/auth."""

    issuer: str
    auth_base: str

    @classmethod
    def for_fhir_base(cls, fhir_base: str) -> AuthEndpoints:
        fhir_base = fhir_base.rstrip("/")
        host = fhir_base.rsplit("/", 1)[0] if fhir_base.count("/") > 2 else fhir_base
        return cls(issuer=fhir_base, auth_base=f"{host}/auth")

    @property
    def auth_path(self) -> str:
        """The path the authorization server's pages live under: /auth, or /{tenant}/auth."""
        return urlsplit(self.auth_base).path or "/auth"

    def page(self, name: str) -> str:
        """A page of the browser flow (login, consent, ...), as a path on this host."""
        return f"{self.auth_path}/{name}"

    @property
    def authorize(self) -> str:
        return f"{self.auth_base}/authorize"

    @property
    def token(self) -> str:
        return f"{self.auth_base}/token"

    @property
    def jwks(self) -> str:
        return f"{self.auth_base}/jwks"

    @property
    def register(self) -> str:
        return f"{self.auth_base}/register"

    @property
    def introspect(self) -> str:
        return f"{self.auth_base}/introspect"

    @property
    def revoke(self) -> str:
        return f"{self.auth_base}/revoke"

    @property
    def style(self) -> str:
        return f"{self.auth_base}/smart-style.json"

    @property
    def launch(self) -> str:
        return f"{self.auth_base}/launch"


def supported_scopes(resource_types: list[str]) -> list[str]:
    scopes = list(CONTEXT_SCOPE_ORDER)
    for context in ("patient", "user"):
        scopes += [f"{context}/*.rs", f"{context}/*.read"]
        scopes += [f"{context}/{t}.rs" for t in resource_types]
        scopes += [f"{context}/{t}.read" for t in resource_types]
    scopes += ["system/*.rs", "system/*.read"]
    return scopes


def smart_configuration(endpoints: AuthEndpoints, resource_types: list[str]) -> dict[str, Any]:
    return {
        "issuer": endpoints.issuer,
        "jwks_uri": endpoints.jwks,
        "authorization_endpoint": endpoints.authorize,
        "token_endpoint": endpoints.token,
        "token_endpoint_auth_methods_supported": AUTH_METHODS,
        "token_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGORITHMS,
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "registration_endpoint": endpoints.register,
        "scopes_supported": supported_scopes(resource_types),
        "response_types_supported": ["code"],
        "introspection_endpoint": endpoints.introspect,
        "revocation_endpoint": endpoints.revoke,
        "code_challenge_methods_supported": ["S256"],
        "capabilities": CAPABILITIES,
    }


def openid_configuration(endpoints: AuthEndpoints, resource_types: list[str]) -> dict[str, Any]:
    return {
        "issuer": endpoints.issuer,
        "authorization_endpoint": endpoints.authorize,
        "token_endpoint": endpoints.token,
        "jwks_uri": endpoints.jwks,
        "registration_endpoint": endpoints.register,
        "introspection_endpoint": endpoints.introspect,
        "revocation_endpoint": endpoints.revoke,
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": AUTH_METHODS,
        "token_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGORITHMS,
        "scopes_supported": supported_scopes(resource_types),
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "fhirUser"],
        "code_challenge_methods_supported": ["S256"],
    }


#: The style a SMART app may follow to look at home (context-style).
SMART_STYLE = {
    "color_background": "#f6f7f9",
    "color_error": "#b00020",
    "color_highlight": "#005ea2",
    "color_modal_backdrop": "",
    "color_success": "#2e7d32",
    "color_text": "#1b1b1b",
    "dim_border_radius": "4px",
    "dim_font_size": "16px",
    "dim_spacing_size": "16px",
    "font_family_body": "system-ui, sans-serif",
    "font_family_heading": "system-ui, sans-serif",
}
