"""safe by default: where a client came from (self-registered apps are unverified), which
clients may introspect any token (resource servers), and login throttling per username,
known or not (so a lockout answers the same for both).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("oauth_client") as batch:
        batch.add_column(
            sa.Column("self_registered", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(
            sa.Column("resource_server", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.create_table(
        "login_throttle",
        sa.Column("id", sa.Integer(), primary_key=True),
        # sha256 of the normalised username: unknown names are throttled too, and stored
        # without the name itself.
        sa.Column("username_key", sa.String(64), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("locked_until", TS, nullable=True),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_index(
        "ix_login_throttle_username_key", "login_throttle", ["username_key"], unique=True
    )


def downgrade() -> None:
    op.drop_table("login_throttle")
    with op.batch_alter_table("oauth_client") as batch:
        batch.drop_column("resource_server")
        batch.drop_column("self_registered")
