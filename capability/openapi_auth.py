"""The authorization server's part of facade's OpenAPI document: SMART discovery, the
RFC 6749/7662/7009/7591 endpoints and the login pages, from the same lists the discovery
documents use. Description only; nothing here serves a route.
"""

from __future__ import annotations

from capability.openapi_parts import (
    STRING,
    Schema,
    form_body,
    html_answer,
    json_answer,
    oauth_errors,
    operation,
    query_parameters,
    ref,
)
from facade.auth.server.discovery import AUTH_METHODS, supported_scopes

GRANT_TYPES = ["authorization_code", "refresh_token", "client_credentials"]
#: RFC 6749 §4.1.3, §6 and RFC 7523 client authentication, as one form (the grant type
#: says which fields apply).
TOKEN_FORM: dict[str, Schema] = {
    "grant_type": {"type": "string", "enum": GRANT_TYPES},
    "code": STRING,
    "redirect_uri": {"type": "string", "format": "uri"},
    "code_verifier": {"type": "string", "pattern": r"^[A-Za-z0-9\-._~]{43,128}$"},
    "refresh_token": STRING,
    "scope": STRING,
    "client_id": STRING,
    "client_secret": STRING,
    "client_assertion_type": {
        "type": "string",
        "enum": ["urn:ietf:params:oauth:client-assertion-type:jwt-bearer"],
    },
    "client_assertion": STRING,
}
TOKEN_ACTION_FORM: dict[str, Schema] = {
    "token": STRING,
    "token_type_hint": {"type": "string", "enum": ["access_token", "refresh_token"]},
    "client_id": STRING,
    "client_secret": STRING,
    "client_assertion_type": TOKEN_FORM["client_assertion_type"],
    "client_assertion": STRING,
}
AUTHORIZE_PARAMETERS: dict[str, Schema] = {
    "response_type": {"type": "string", "enum": ["code"]},
    "client_id": STRING,
    "redirect_uri": {"type": "string", "format": "uri"},
    "scope": STRING,
    "state": STRING,
    "aud": {"type": "string", "format": "uri"},
    "code_challenge": {"type": "string", "pattern": r"^[A-Za-z0-9\-_]{43}$"},
    "code_challenge_method": {"type": "string", "enum": ["S256"]},
    "launch": STRING,
    "nonce": STRING,
}
LOGIN_FORM: dict[str, Schema] = {"csrf_token": STRING, "username": STRING, "password": STRING}
#: The other pages of a login session: each a GET page and a POST of its form, whose CSRF
#: token is bound to the session cookie (without the cookie, every POST is refused).
SESSION_PAGES: dict[str, tuple[str, dict[str, Schema]]] = {
    "/auth/login/totp": ("The one-time code of a two-factor login", {"code": STRING}),
    "/auth/consent": (
        "The consent page: which of the requested scopes the user allows",
        {
            "decision": {"type": "string", "enum": ["allow", "deny"]},
            "scope": {"type": "array", "items": STRING},
        },
    ),
    "/auth/patient": ("The patient picker of a practitioner's launch", {"patient": STRING}),
    "/auth/launch": (
        "A practitioner mints an EHR launch context for an app",
        {"patient": STRING, "encounter": STRING, "launch_uri": {"type": "string", "format": "uri"}},
    ),
}


def auth_paths(resource_types: list[str]) -> dict[str, Schema]:
    """SMART App Launch 2.2 discovery, RFC 6749/7662/7009/7591 endpoints and the login
    pages. Their errors are RFC 6749 JSON (machine endpoints) or HTML pages (browser ones)."""
    scopes = supported_scopes(resource_types)
    token_form = {**TOKEN_FORM, "scope": {**STRING, "examples": [" ".join(scopes[:3])]}}
    redirect = {"303": {"description": "to the login or consent page"}}
    back_to_app = {"302": {"description": "back to the app's redirect_uri (code or error)"}}
    client_metadata: Schema = {
        "type": "object",
        "properties": {
            "client_name": STRING,
            "redirect_uris": {"type": "array", "items": {"type": "string", "format": "uri"}},
            "token_endpoint_auth_method": {"type": "string", "enum": list(AUTH_METHODS)},
            "grant_types": {"type": "array", "items": {"type": "string", "enum": GRANT_TYPES}},
            "scope": STRING,
            "jwks_uri": {"type": "string", "format": "uri"},
            "jwks": {"type": "object", "properties": {"keys": {"type": "array"}}},
        },
    }

    def machine(op_id: str, summary: str, form: dict[str, Schema], ok: Schema) -> Schema:
        return {
            "post": operation(
                op_id,
                summary,
                [],
                {**ok, **oauth_errors()},
                body=form_body(form),
                secured=False,
                tag="Authorization",
            )
        }

    def page(op_id: str, summary: str, parameters: list[Schema], answers: Schema) -> Schema:
        return operation(op_id, summary, parameters, answers, secured=False, tag="Authorization")

    def session_page(path: str, summary: str, form: dict[str, Schema]) -> Schema:
        name = "".join(part.title() for part in path.split("/")[2:])
        refused = {
            **redirect,
            **html_answer("400", "an error page"),
            **html_answer("403", "the form expired"),
        }
        return {
            "get": page(f"{name[0].lower()}{name[1:]}Page", summary, [], html_answer("200", "")),
            "post": {
                **page(f"{name[0].lower()}{name[1:]}", summary, [], refused),
                "requestBody": form_body({"csrf_token": STRING, **form}),
            },
        }

    return {
        "/fhir/.well-known/smart-configuration": {
            "get": page(
                "smartConfiguration",
                "SMART App Launch discovery",
                [],
                json_answer("200", "the SMART configuration", ref("SmartConfiguration")),
            )
        },
        "/fhir/.well-known/openid-configuration": {
            "get": page(
                "openidConfiguration",
                "OpenID Connect discovery",
                [],
                json_answer("200", "the OpenID configuration", {"type": "object"}),
            )
        },
        "/auth/smart-style.json": {
            "get": page(
                "smartStyle",
                "The style a SMART app may follow (context-style)",
                [],
                json_answer("200", "the style", {"type": "object"}),
            )
        },
        "/auth/jwks": {
            "get": page("jwks", "The token signing keys", [], json_answer("200", "JWKS", {}))
        },
        "/auth/token": machine(
            "token",
            "Token endpoint (authorization code with PKCE, refresh, client credentials)",
            token_form,
            json_answer("200", "an access token", ref("TokenResponse")),
        ),
        "/auth/introspect": machine(
            "introspect",
            "RFC 7662 introspection (confidential clients, or a Bearer token)",
            TOKEN_ACTION_FORM,
            json_answer("200", "the token's state", {"type": "object"}),
        ),
        "/auth/revoke": machine(
            "revoke", "RFC 7009 revocation", TOKEN_ACTION_FORM, {"200": {"description": "done"}}
        ),
        "/auth/register": {
            "post": operation(
                "register",
                "RFC 7591 dynamic client registration",
                [],
                {
                    **json_answer("201", "the registered client", {"type": "object"}),
                    **oauth_errors(),
                },
                body={
                    "required": True,
                    "content": {"application/json": {"schema": client_metadata}},
                },
                secured=False,
                tag="Authorization",
            )
        },
        "/auth/authorize": {
            "get": page(
                "authorize",
                "Start an authorization (SMART standalone or EHR launch)",
                query_parameters(AUTHORIZE_PARAMETERS),
                {**redirect, **back_to_app, **html_answer("400", "an error page")},
            ),
            "post": {
                **page(
                    "authorizePost",
                    "Start an authorization with a form (authorize-post)",
                    [],
                    {**redirect, **back_to_app, **html_answer("400", "an error page")},
                ),
                "requestBody": form_body(AUTHORIZE_PARAMETERS),
            },
        },
        "/auth/login": {
            "get": page("loginPage", "The login page", [], html_answer("200", "the login form")),
            "post": {
                **page(
                    "login",
                    "Log in (the form's CSRF token is bound to the session cookie)",
                    [],
                    {
                        **redirect,
                        **html_answer("401", "wrong credentials"),
                        **html_answer("403", "refused"),
                    },
                ),
                "requestBody": form_body(LOGIN_FORM),
            },
        },
        **{path: session_page(path, *page_form) for path, page_form in SESSION_PAGES.items()},
    }
