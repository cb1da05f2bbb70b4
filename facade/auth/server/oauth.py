"""authlib's OAuth 2.0 machinery, assembled for SMART: grants, client authentication and
the adapter from Starlette requests.

authlib validates authorize requests, issues and redeems codes (PKCE S256 required for
every client), rotates refresh tokens and runs client_credentials. facade adds what authlib
does not know: SMART context (patient, encounter, fhirUser), JWT access tokens from the
TokenService, and private_key_jwt assertions restricted to RS384/ES384 with jti replay and
a five-minute lifetime. Every code and token a login gets holds only the scopes that kind of
user may hold (scopes.holdable), re-applied on refresh. It never logs a code, a token or a
secret.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from authlib.oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import (
    InvalidClientError,
    InvalidGrantError,
    InvalidRequestError,
    InvalidScopeError,
    OAuth2Payload,
    OAuth2Request,
    grants,
)
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from authlib.oauth2.rfc7636 import CodeChallenge
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from sqlmodel import select

from facade.auth.scopes import ScopeSet, bound_to_login, grants_data, user_kind
from facade.auth.server.clients import ClientRegistry, RegisteredClient
from facade.auth.server.users import UserRegistry
from facade.auth.tokens import RefreshGrant, TokenService, token_hash
from facade.clock import Clock
from facade.store.database import Database
from facade.store.models import AuthorizationCodeRecord, RefreshTokenRecord, SeenAssertion

CODE_LIFETIME = timedelta(seconds=60)
ASSERTION_ALGORITHMS = ["RS384", "ES384"]
#: SMART Backend Services: a client assertion expires at most five minutes from now.
MAX_ASSERTION_LIFETIME = timedelta(minutes=5)
ASSERTION_LEEWAY_SECONDS = 60
#: authlib refuses non-https URLs in its request objects. TLS is the job of whatever faces
#: the network (a reverse proxy terminating TLS hands facade plain http), so the request's
#: own URL is kept on `uri` and authlib's check is given this stand-in.
_TLS_CHECKED_AT_THE_EDGE = "https://facade.invalid/"


class FormPayload(OAuth2Payload):
    def __init__(self, pairs: list[tuple[str, str]]):
        self._data: dict[str, str] = {}
        self._datalist: dict[str, list[str]] = {}
        for key, value in pairs:
            self._data.setdefault(key, value)
            self._datalist.setdefault(key, []).append(value)

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> dict[str, list[str]]:
        return self._datalist


class FacadeOAuth2Request(OAuth2Request):
    """An OAuth request read from Starlette: form (token endpoint) or query/form (authorize)."""

    def __init__(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        pairs: list[tuple[str, str]],
        *,
        client_jwks: dict[str, Any] | None = None,
    ):
        super().__init__(method, _TLS_CHECKED_AT_THE_EDGE, headers=headers)
        self.uri = url
        self.payload = FormPayload(pairs)
        self._pairs = pairs
        #: The asymmetric client's JWK Set, fetched (async) before authlib runs (sync).
        self.client_jwks = client_jwks

    @property
    def args(self) -> Any:
        return dict(self._pairs)

    @property
    def form(self) -> Any:
        return dict(self._pairs)


@dataclass(frozen=True)
class Principal:
    """Who an authorization was granted by, and the SMART context it carries."""

    username: str
    fhir_user: str
    patient_id: str = ""
    encounter_id: str = ""
    nonce: str = ""
    auth_time: datetime = field(default_factory=lambda: datetime.now(UTC))
    #: Every token descended from one authorization shares this (revoked together).
    family: str = ""


class CodeView:
    """authlib's view of a stored authorization code."""

    def __init__(self, record: AuthorizationCodeRecord):
        self.record = record

    def get_redirect_uri(self) -> str:
        return self.record.redirect_uri

    def get_scope(self) -> str:
        return self.record.scope

    def get_nonce(self) -> str:
        return self.record.nonce

    def get_auth_time(self) -> int:
        return int(_aware(self.record.auth_time).timestamp())


class RefreshView:
    """authlib's view of a refresh token that has been presented (and spent)."""

    def __init__(self, grant: RefreshGrant):
        self.grant = grant

    def check_client(self, client: RegisteredClient) -> bool:
        return client.client_id == self.grant.client_id

    def get_scope(self) -> str:
        return self.grant.scope


class S256Challenge(CodeChallenge):
    """PKCE with S256 only (SMART 2): `plain`, or no method at all, is refused."""

    DEFAULT_CODE_CHALLENGE_METHOD = "S256"
    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        if grant.request.payload.data.get("code_challenge_method") != "S256":
            raise InvalidRequestError(
                "code_challenge_method must be S256", redirect_uri=redirect_uri
            )
        super().validate_code_challenge(grant, redirect_uri)

    def get_authorization_code_challenge(self, authorization_code: CodeView) -> str:
        return authorization_code.record.code_challenge

    def get_authorization_code_challenge_method(self, authorization_code: CodeView) -> str:
        return "S256"


class AuthorizationCodeGrant(grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = [
        "client_secret_basic",
        "client_secret_post",
        "private_key_jwt",
        "none",
    ]
    server: FacadeAuthorizationServer

    def save_authorization_code(self, code: str, request: Any) -> None:
        principal: Principal = request.user
        now = self.server.clock.now()
        data = request.payload.data
        # The consent flow has bound the scope already; a code must never hold more.
        scope = bound_to_login(data.get("scope", ""), principal.fhir_user, principal.patient_id)
        with self.server.database.session() as session:
            session.add(
                AuthorizationCodeRecord(
                    code_hash=token_hash(code),
                    client_id=request.client.client_id,
                    redirect_uri=data.get("redirect_uri", ""),
                    scope=scope,
                    username=principal.username,
                    patient_id=principal.patient_id,
                    encounter_id=principal.encounter_id,
                    code_challenge=data.get("code_challenge", ""),
                    nonce=principal.nonce,
                    auth_time=principal.auth_time,
                    expires_at=now + CODE_LIFETIME,
                    used=False,
                )
            )
            session.commit()

    def query_authorization_code(self, code: str, client: Any) -> CodeView | None:
        hashed = token_hash(code)
        with self.server.database.session() as session:
            record = session.exec(
                select(AuthorizationCodeRecord).where(AuthorizationCodeRecord.code_hash == hashed)
            ).first()
        if record is None or record.client_id != client.client_id:
            return None
        if record.used:
            # A code presented twice was intercepted: revoke what the first use issued.
            self.server.tokens.revoke_family(hashed)
            return None
        if _aware(record.expires_at) <= self.server.clock.now():
            return None
        return CodeView(record)

    def delete_authorization_code(self, authorization_code: CodeView) -> None:
        with self.server.database.session() as session:
            record = session.get(AuthorizationCodeRecord, authorization_code.record.id)
            if record is not None:
                record.used = True
                session.add(record)
                session.commit()

    def authenticate_user(self, authorization_code: CodeView) -> Principal | None:
        record = authorization_code.record
        user = self.server.users.find(record.username)
        if user is None:
            return None
        return Principal(
            username=user.username,
            fhir_user=user.fhir_user,
            patient_id=record.patient_id,
            encounter_id=record.encounter_id,
            nonce=record.nonce,
            auth_time=_aware(record.auth_time),
            family=record.code_hash,
        )


class RefreshTokenGrant(grants.RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = AuthorizationCodeGrant.TOKEN_ENDPOINT_AUTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True
    server: FacadeAuthorizationServer

    def _validate_request_token(self, client: RegisteredClient) -> RefreshView:
        presented = self.request.form.get("refresh_token")
        if not presented:
            raise InvalidRequestError("Missing 'refresh_token' in request.")
        # A scope may only narrow, and must leave data the user may still hold. Checked
        # before the token is spent, so a bad request does not cost the app its offline access.
        requested = cast(Any, self.request).payload.scope
        record = self.server.refresh_record(presented)
        if record is not None and record.client_id == client.client_id:
            if requested and not set(requested.split()) <= set(record.scope.split()):
                raise InvalidScopeError()
            user = self.server.users.find(record.username)
            asked = requested or record.scope
            if user is not None and not grants_data(
                bound_to_login(asked, user.fhir_user, record.patient_id).split()
            ):
                raise InvalidScopeError(NOTHING_GRANTABLE)
        grant = self.server.tokens.use_refresh_token(presented, client.client_id)
        if grant is None:
            raise InvalidGrantError()
        return RefreshView(grant)

    def authenticate_user(self, refresh_token: RefreshView) -> Principal | None:
        grant = refresh_token.grant
        user = self.server.users.find(grant.username)
        if user is None:
            return None
        return Principal(
            username=user.username,
            fhir_user=user.fhir_user,
            patient_id=grant.patient_id,
            encounter_id=grant.encounter_id,
            auth_time=self.server.clock.now(),
            family=grant.family,
        )

    def revoke_old_credential(self, refresh_token: Any) -> None:
        """Already spent by TokenService.use_refresh_token (presenting it again revokes)."""


class ClientCredentialsGrant(grants.ClientCredentialsGrant):
    """SMART Backend Services: private_key_jwt only, system/ scopes only."""

    TOKEN_ENDPOINT_AUTH_METHODS = ["private_key_jwt"]
    server: FacadeAuthorizationServer

    def create_token_response(self) -> Any:
        request: Any = self.request
        client: RegisteredClient = request.client
        requested = ScopeSet.parse(request.payload.scope or "")
        system = [r.text for r in requested.resources if r.context == "system"]
        granted = client.get_allowed_scope(" ".join(system))
        if not granted:
            raise InvalidScopeError("Request system/ scopes this client is registered for.")
        token = self.generate_token(scope=granted, include_refresh_token=False)
        self.save_token(token)  # type: ignore[no-untyped-call]
        return 200, token, self.TOKEN_RESPONSE_HEADER


class ClientAssertion(JWTBearerClientAssertion):
    """private_key_jwt (RFC 7523) as SMART asks: RS384/ES384, a `kid` found in the client's
    JWK Set, iss = sub = client_id, aud = the token URL, jti never seen before, exp at most
    five minutes ahead."""

    CLIENT_AUTH_METHOD = "private_key_jwt"  # type: ignore[misc]

    def __init__(self, server: FacadeAuthorizationServer):
        super().__init__(validate_jti=True, leeway=ASSERTION_LEEWAY_SECONDS)
        self._server = server

    def __call__(self, query_client: Any, request: FacadeOAuth2Request) -> RegisteredClient | None:
        data = request.form
        if data.get("client_assertion_type") != self.CLIENT_ASSERTION_TYPE:
            return None
        assertion = data.get("client_assertion")
        if not assertion:
            return None
        headers, claims = self.extract_assertion(assertion)
        client_id = claims.get("sub")
        if not isinstance(client_id, str):
            raise InvalidClientError(description="Invalid claim: 'sub'")
        client: RegisteredClient | None = query_client(client_id)
        if client is None or not client.is_asymmetric:
            raise InvalidClientError(description="Unknown client.")
        if headers.get("alg") not in ASSERTION_ALGORITHMS:
            raise InvalidClientError(description="Assertions must be signed with RS384 or ES384.")
        jwks = request.client_jwks if client.row.jwks_uri else client.public_jwks()
        if not jwks:
            raise InvalidClientError(description="The client's keys are not available.")
        try:
            keys = KeySet.import_key_set(jwks)  # type: ignore[arg-type,unused-ignore]
        except (JoseError, ValueError, TypeError):
            raise InvalidClientError(description="The client's JWK Set is not usable.") from None
        kid = headers.get("kid")
        if not kid or not any(k.kid == kid for k in keys.keys):
            raise InvalidClientError(description="No key of the client has this kid.")
        try:
            token = jwt.decode(assertion, keys, algorithms=ASSERTION_ALGORITHMS)
        except (JoseError, ValueError):
            raise InvalidClientError(description="The assertion signature is not valid.") from None
        self.verify_claims(token.claims)
        request.client = client
        return cast(RegisteredClient, self.authenticate_client(client))  # type: ignore[no-untyped-call]

    def verify_claims(self, claims: Any) -> None:
        now = self._server.clock.now().timestamp()
        exp = claims.get("exp")
        if not isinstance(exp, int | float) or exp <= now - ASSERTION_LEEWAY_SECONDS:
            raise InvalidClientError(description="The assertion has expired.")
        if exp > now + MAX_ASSERTION_LIFETIME.total_seconds() + ASSERTION_LEEWAY_SECONDS:
            raise InvalidClientError(description="The assertion must expire within 5 minutes.")
        nbf = claims.get("nbf")
        if isinstance(nbf, int | float) and nbf > now + ASSERTION_LEEWAY_SECONDS:
            raise InvalidClientError(description="The assertion is not valid yet.")
        if claims.get("iss") != claims.get("sub"):
            raise InvalidClientError(description="Issuer and Subject MUST match.")
        aud = claims.get("aud")
        audiences = aud if isinstance(aud, list) else [aud]
        if self._server.token_url not in audiences:
            raise InvalidClientError(description="The assertion's aud must be the token URL.")
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti:
            raise InvalidClientError(description="Missing JWT ID.")
        if not self._remember(str(claims["sub"]), jti, exp):
            raise InvalidClientError(description="JWT ID is used before.")

    def _remember(self, client_id: str, jti: str, exp: float) -> bool:
        now = self._server.clock.now()
        with self._server.database.session() as session:
            for old in session.exec(select(SeenAssertion).where(SeenAssertion.expires_at < now)):
                session.delete(old)
            seen = session.exec(
                select(SeenAssertion).where(
                    SeenAssertion.client_id == client_id, SeenAssertion.jti == jti
                )
            ).first()
            if seen is not None:
                session.commit()
                return False
            expires = datetime.fromtimestamp(exp + ASSERTION_LEEWAY_SECONDS, UTC)
            session.add(SeenAssertion(client_id=client_id, jti=jti[:200], expires_at=expires))
            session.commit()
        return True


def assertion_subject(form: Mapping[str, str]) -> tuple[str, str]:
    """(client_id, kid) named by an unverified client assertion, to fetch its keys first."""
    if form.get("client_assertion_type") != JWTBearerClientAssertion.CLIENT_ASSERTION_TYPE:
        return "", ""
    try:
        headers, claims = _EXTRACTOR.extract_assertion(form.get("client_assertion", ""))
    except InvalidClientError:
        return "", ""
    sub = claims.get("sub")
    return (sub if isinstance(sub, str) else ""), str(headers.get("kid") or "")


_EXTRACTOR = JWTBearerClientAssertion(validate_jti=False)


class FacadeAuthorizationServer(AuthorizationServer):
    def __init__(
        self,
        *,
        database: Database,
        clients: ClientRegistry,
        users: UserRegistry,
        tokens: TokenService,
        clock: Clock,
        token_url: str,
        style_url: str,
    ):
        super().__init__(scopes_supported=None)
        self.database = database
        self.clients = clients
        self.users = users
        self.tokens = tokens
        self.clock = clock
        self.token_url = token_url
        self.style_url = style_url
        self.register_grant(AuthorizationCodeGrant, [S256Challenge(required=True)])
        self.register_grant(RefreshTokenGrant)
        self.register_grant(ClientCredentialsGrant)
        self.register_client_auth_method("private_key_jwt", ClientAssertion(self))
        self.register_token_generator("default", cast(Any, self._generate_token))

    # -- authlib's hooks ----------------------------------------------------------------------

    def query_client(self, client_id: str) -> Any:
        return self.clients.find(client_id)

    def authenticate_client(self, request: Any, methods: Any, endpoint: str = "token") -> Any:
        try:
            return super().authenticate_client(request, methods, endpoint)
        except ValueError:
            # authlib lets a malformed Authorization header ("Basic " with nothing after it,
            # credentials that are not UTF-8) escape as a 500: the client failed to authenticate.
            raise InvalidClientError(description="The client credentials are malformed.") from None

    def save_token(self, token: dict[str, Any], request: Any) -> None:
        """TokenService has recorded the access token (jti) and refresh token (hash)."""

    def create_oauth2_request(self, request: Any) -> Any:
        return request

    def create_json_request(self, request: Any) -> Any:
        return request

    def handle_response(self, status: int, body: Any, headers: Any) -> tuple[int, Any, Any]:
        return status, body, headers

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        pass

    # -- tokens -------------------------------------------------------------------------------

    def refresh_record(self, presented: str) -> RefreshTokenRecord | None:
        with self.database.session() as session:
            return session.exec(
                select(RefreshTokenRecord).where(
                    RefreshTokenRecord.token_hash == token_hash(presented)
                )
            ).first()

    def _generate_token(
        self,
        grant_type: str,
        client: RegisteredClient,
        user: Principal | None = None,
        scope: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = True,
    ) -> dict[str, Any]:
        scope = scope or ""
        if user is None:
            issued = self.tokens.issue_access_token(
                client_id=client.client_id, scope=scope, subject=client.client_id, backend=True
            )
            return {
                "access_token": issued.access_token,
                "token_type": "Bearer",
                "expires_in": issued.expires_in,
                "scope": scope,
            }
        # Codes and refresh tokens from before scopes were bound to the login are bound here,
        # so neither an old code nor a refresh ever widens what the user may hold.
        scope = bound_to_login(scope, user.fhir_user, user.patient_id)
        if not grants_data(scope.split()):
            raise InvalidScopeError(NOTHING_GRANTABLE)
        scopes = ScopeSet.parse(scope)
        fhir_user = user.fhir_user if "fhirUser" in scopes or "openid" in scopes else ""
        issued = self.tokens.issue_access_token(
            client_id=client.client_id,
            scope=scope,
            subject=user.username,
            patient_id=user.patient_id,
            encounter_id=user.encounter_id,
            fhir_user=fhir_user,
            family=user.family,
            kind=user_kind(user.fhir_user),
        )
        token: dict[str, Any] = {
            "access_token": issued.access_token,
            "token_type": "Bearer",
            "expires_in": issued.expires_in,
            "scope": scope,
        }
        if user.patient_id:
            token["patient"] = user.patient_id
        if user.encounter_id:
            token["encounter"] = user.encounter_id
        # An EHR launch (the `launch` scope) opens inside the EHR, which shows the patient.
        token["need_patient_banner"] = bool(user.patient_id) and "launch" not in scopes
        token["smart_style_url"] = self.style_url
        if "openid" in scopes:
            token["id_token"] = self.tokens.issue_id_token(
                client_id=client.client_id,
                subject=user.username,
                fhir_user=user.fhir_user if "fhirUser" in scopes else "",
                nonce=user.nonce,
                auth_time=user.auth_time,
            )
        kind = (
            "offline"
            if "offline_access" in scopes
            else "online"
            if "online_access" in scopes
            else ""
        )
        if include_refresh_token and kind and client.check_grant_type("refresh_token"):
            token["refresh_token"] = self.tokens.issue_refresh_token(
                RefreshGrant(
                    client_id=client.client_id,
                    username=user.username,
                    scope=scope,
                    patient_id=user.patient_id,
                    encounter_id=user.encounter_id,
                    family=user.family,
                    kind=kind,
                )
            )
        return token


NOTHING_GRANTABLE = "None of the requested scopes grants data this user may hold."


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
