"""connection second secret: some vendors' logins need a second secret beside the password
(a TOTP seed for a one-time code), kept encrypted in the connection row like the others.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("upstream_connection") as batch:
        batch.add_column(
            sa.Column("login_secret_enc", sa.Text(), nullable=False, server_default="")
        )


def downgrade() -> None:
    with op.batch_alter_table("upstream_connection") as batch:
        batch.drop_column("login_secret_enc")
