"""Tables of facade's own state. Changing one means adding a migration in `migrations/`."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel


class UpstreamConnection(SQLModel, table=True):
    """facade's authorization at one vendor account. Secrets are stored encrypted."""

    __tablename__ = "upstream_connection"

    id: int | None = Field(default=None, primary_key=True)
    vendor: str = Field(index=True, unique=True, max_length=40)
    base_url: str = Field(max_length=500)
    client_id: str = Field(max_length=200)
    client_secret_enc: str
    access_token_enc: str
    refresh_token_enc: str
    #: When the access token expires. Datetimes here are timezone-aware and stored as UTC.
    expires_at: datetime
    scope: str = Field(default="", max_length=2000)
    #: A second login secret some vendors need (a TOTP seed), encrypted; "" when none.
    login_secret_enc: str = Field(default="")
    created_at: datetime
    updated_at: datetime


class OAuthClient(SQLModel, table=True):
    """An app registered with facade's authorization server."""

    __tablename__ = "oauth_client"

    id: int | None = Field(default=None, primary_key=True)
    client_id: str = Field(index=True, unique=True, max_length=100)
    name: str = Field(max_length=200)
    #: Argon2 hash of the client secret (symmetric clients); empty for public/asymmetric ones.
    secret_hash: str = ""
    #: "client_secret_basic", "client_secret_post", "private_key_jwt" or "none" (public).
    auth_method: str = Field(max_length=40)
    redirect_uris: str = ""  # space-separated
    scope: str = ""  # the most the client may be granted, space-separated
    grant_types: str = ""  # space-separated
    jwks: str = ""  # inline JWK Set (JSON), for private_key_jwt
    jwks_uri: str = Field(default="", max_length=500)
    #: "active", "pending" (held for an operator's approval) or "disabled".
    status: str = Field(default="active", max_length=20)
    #: Hash of the RFC 7591 registration access token, when registered dynamically.
    registration_token_hash: str = ""
    #: Registered through /auth/register (RFC 7591): shown to users as unverified.
    self_registered: bool = False
    #: May introspect tokens issued to other clients (an operator's resource server).
    resource_server: bool = False
    created_at: datetime
    updated_at: datetime


class UserAccount(SQLModel, table=True):
    """A person who logs in to facade's authorization server: a patient or a practitioner."""

    __tablename__ = "user_account"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(index=True, unique=True, max_length=150)
    password_hash: str
    #: "Patient/<id>" or "Practitioner/<id>".
    fhir_user: str = Field(max_length=100)
    #: TOTP secret, encrypted with the server's secret box; empty when MFA is off.
    totp_secret_enc: str = ""
    failed_logins: int = 0
    locked_until: datetime | None = None
    #: Set by `facade user disable`: the login is refused as an unknown one would be.
    disabled_at: datetime | None = None
    created_at: datetime
    updated_at: datetime


class LoginThrottle(SQLModel, table=True):
    """Failed logins per username, known or not, so that a lockout looks the same for both."""

    __tablename__ = "login_throttle"

    id: int | None = Field(default=None, primary_key=True)
    #: sha256 of the normalised username (the name itself is not stored).
    username_key: str = Field(index=True, unique=True, max_length=64)
    failures: int = 0
    locked_until: datetime | None = None
    updated_at: datetime


class AuthorizationCodeRecord(SQLModel, table=True):
    __tablename__ = "authorization_code"

    id: int | None = Field(default=None, primary_key=True)
    code_hash: str = Field(index=True, unique=True, max_length=100)
    client_id: str = Field(max_length=100)
    redirect_uri: str = Field(max_length=1000)
    scope: str
    username: str = Field(max_length=150)
    patient_id: str = Field(default="", max_length=64)
    encounter_id: str = Field(default="", max_length=64)
    code_challenge: str = Field(max_length=200)
    nonce: str = Field(default="", max_length=200)
    auth_time: datetime
    expires_at: datetime
    used: bool = False


class RefreshTokenRecord(SQLModel, table=True):
    """A refresh token (stored as a hash). Rotation keeps the family; reuse revokes it."""

    __tablename__ = "refresh_token"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(index=True, unique=True, max_length=100)
    family: str = Field(index=True, max_length=64)
    client_id: str = Field(index=True, max_length=100)
    username: str = Field(max_length=150)
    scope: str
    patient_id: str = Field(default="", max_length=64)
    encounter_id: str = Field(default="", max_length=64)
    #: "offline" lasts until expires_at; "online" also ends when the user's session does.
    kind: str = Field(default="offline", max_length=10)
    expires_at: datetime
    #: Set when this token was exchanged for a newer one (presenting it again is reuse).
    rotated_at: datetime | None = None
    revoked: bool = False
    created_at: datetime


class IssuedToken(SQLModel, table=True):
    """Every access token issued (by its jti), so revocation and introspection are exact."""

    __tablename__ = "issued_token"

    id: int | None = Field(default=None, primary_key=True)
    jti: str = Field(index=True, unique=True, max_length=64)
    client_id: str = Field(index=True, max_length=100)
    family: str = Field(default="", index=True, max_length=64)
    expires_at: datetime
    revoked: bool = False


class SigningKey(SQLModel, table=True):
    """facade's own JWT signing keys (private part encrypted); rotated, old ones kept to verify."""

    __tablename__ = "signing_key"

    id: int | None = Field(default=None, primary_key=True)
    kid: str = Field(index=True, unique=True, max_length=64)
    alg: str = Field(max_length=10)
    private_jwk_enc: str
    public_jwk: str
    created_at: datetime
    #: After this the key no longer signs; it still verifies until retired_at.
    rotate_after: datetime
    retired_at: datetime


class SeenAssertion(SQLModel, table=True):
    """jti values of client assertions already used (replay protection) until they expire."""

    __tablename__ = "seen_assertion"

    id: int | None = Field(default=None, primary_key=True)
    client_id: str = Field(max_length=100)
    jti: str = Field(max_length=200)
    expires_at: datetime


class LaunchContext(SQLModel, table=True):
    """An EHR launch: the opaque `launch` value bound to a patient (and encounter)."""

    __tablename__ = "launch_context"

    id: int | None = Field(default=None, primary_key=True)
    launch: str = Field(index=True, unique=True, max_length=100)
    patient_id: str = Field(max_length=64)
    encounter_id: str = Field(default="", max_length=64)
    created_by: str = Field(default="", max_length=150)
    expires_at: datetime


class AuditRecord(SQLModel, table=True):
    """One interaction that touched patient data (or an authorization event). Ids, no PHI."""

    __tablename__ = "audit_record"

    id: int | None = Field(default=None, primary_key=True)
    recorded_at: datetime = Field(index=True)
    #: "read", "search", "operation", "export", "authorize", "token", "launch", ...
    interaction: str = Field(max_length=30)
    client_id: str = Field(default="", index=True, max_length=100)
    username: str = Field(default="", max_length=150)
    patient_id: str = Field(default="", index=True, max_length=64)
    resource_type: str = Field(default="", max_length=64)
    resource_id: str = Field(default="", max_length=64)
    result_count: int = 0
    vendor_calls: int = 0
    #: "success", or the error code (e.g. "forbidden", "not-found", "invalid_grant").
    outcome: str = Field(default="success", max_length=60)
    source_ip: str = Field(default="", max_length=64)
