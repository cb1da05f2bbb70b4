"""authorization server state: clients, users, codes, refresh tokens, issued tokens, signing
keys, seen client assertions, EHR launches and the audit log.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "oauth_client",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("client_id", sa.String(100), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("secret_hash", sa.Text(), nullable=False, server_default=""),
        sa.Column("auth_method", sa.String(40), nullable=False),
        sa.Column("redirect_uris", sa.Text(), nullable=False, server_default=""),
        sa.Column("scope", sa.Text(), nullable=False, server_default=""),
        sa.Column("grant_types", sa.Text(), nullable=False, server_default=""),
        sa.Column("jwks", sa.Text(), nullable=False, server_default=""),
        sa.Column("jwks_uri", sa.String(500), nullable=False, server_default=""),
        sa.Column("status", sa.String(20), nullable=False, server_default="active"),
        sa.Column("registration_token_hash", sa.Text(), nullable=False, server_default=""),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_index("ix_oauth_client_client_id", "oauth_client", ["client_id"], unique=True)
    op.create_table(
        "user_account",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("username", sa.String(150), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("fhir_user", sa.String(100), nullable=False),
        sa.Column("totp_secret_enc", sa.Text(), nullable=False, server_default=""),
        sa.Column("failed_logins", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("locked_until", TS, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_index("ix_user_account_username", "user_account", ["username"], unique=True)
    op.create_table(
        "authorization_code",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("code_hash", sa.String(100), nullable=False),
        sa.Column("client_id", sa.String(100), nullable=False),
        sa.Column("redirect_uri", sa.String(1000), nullable=False),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("username", sa.String(150), nullable=False),
        sa.Column("patient_id", sa.String(64), nullable=False, server_default=""),
        sa.Column("encounter_id", sa.String(64), nullable=False, server_default=""),
        sa.Column("code_challenge", sa.String(200), nullable=False),
        sa.Column("nonce", sa.String(200), nullable=False, server_default=""),
        sa.Column("auth_time", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("used", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.create_index(
        "ix_authorization_code_code_hash", "authorization_code", ["code_hash"], unique=True
    )
    op.create_table(
        "refresh_token",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("token_hash", sa.String(100), nullable=False),
        sa.Column("family", sa.String(64), nullable=False),
        sa.Column("client_id", sa.String(100), nullable=False),
        sa.Column("username", sa.String(150), nullable=False),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("patient_id", sa.String(64), nullable=False, server_default=""),
        sa.Column("encounter_id", sa.String(64), nullable=False, server_default=""),
        sa.Column("kind", sa.String(10), nullable=False, server_default="offline"),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("rotated_at", TS, nullable=True),
        sa.Column("revoked", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index("ix_refresh_token_token_hash", "refresh_token", ["token_hash"], unique=True)
    op.create_index("ix_refresh_token_family", "refresh_token", ["family"])
    op.create_index("ix_refresh_token_client_id", "refresh_token", ["client_id"])
    op.create_table(
        "issued_token",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("jti", sa.String(64), nullable=False),
        sa.Column("client_id", sa.String(100), nullable=False),
        sa.Column("family", sa.String(64), nullable=False, server_default=""),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("revoked", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.create_index("ix_issued_token_jti", "issued_token", ["jti"], unique=True)
    op.create_index("ix_issued_token_client_id", "issued_token", ["client_id"])
    op.create_index("ix_issued_token_family", "issued_token", ["family"])
    op.create_table(
        "signing_key",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("kid", sa.String(64), nullable=False),
        sa.Column("alg", sa.String(10), nullable=False),
        sa.Column("private_jwk_enc", sa.Text(), nullable=False),
        sa.Column("public_jwk", sa.Text(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("rotate_after", TS, nullable=False),
        sa.Column("retired_at", TS, nullable=False),
    )
    op.create_index("ix_signing_key_kid", "signing_key", ["kid"], unique=True)
    op.create_table(
        "seen_assertion",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("client_id", sa.String(100), nullable=False),
        sa.Column("jti", sa.String(200), nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.UniqueConstraint("client_id", "jti", name="uq_seen_assertion_client_jti"),
    )
    op.create_table(
        "launch_context",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("launch", sa.String(100), nullable=False),
        sa.Column("patient_id", sa.String(64), nullable=False),
        sa.Column("encounter_id", sa.String(64), nullable=False, server_default=""),
        sa.Column("created_by", sa.String(150), nullable=False, server_default=""),
        sa.Column("expires_at", TS, nullable=False),
    )
    op.create_index("ix_launch_context_launch", "launch_context", ["launch"], unique=True)
    op.create_table(
        "audit_record",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("recorded_at", TS, nullable=False),
        sa.Column("interaction", sa.String(30), nullable=False),
        sa.Column("client_id", sa.String(100), nullable=False, server_default=""),
        sa.Column("username", sa.String(150), nullable=False, server_default=""),
        sa.Column("patient_id", sa.String(64), nullable=False, server_default=""),
        sa.Column("resource_type", sa.String(64), nullable=False, server_default=""),
        sa.Column("resource_id", sa.String(64), nullable=False, server_default=""),
        sa.Column("result_count", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("vendor_calls", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("outcome", sa.String(60), nullable=False, server_default="success"),
        sa.Column("source_ip", sa.String(64), nullable=False, server_default=""),
    )
    op.create_index("ix_audit_record_recorded_at", "audit_record", ["recorded_at"])
    op.create_index("ix_audit_record_client_id", "audit_record", ["client_id"])
    op.create_index("ix_audit_record_patient_id", "audit_record", ["patient_id"])


def downgrade() -> None:
    for table in (
        "audit_record",
        "launch_context",
        "seen_assertion",
        "signing_key",
        "issued_token",
        "refresh_token",
        "authorization_code",
        "user_account",
        "oauth_client",
    ):
        op.drop_table(table)
