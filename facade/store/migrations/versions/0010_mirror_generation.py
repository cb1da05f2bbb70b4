"""mirror: how often each endpoint's records changed, so processes that index the mirror in
memory (API replicas) see another process's sync write.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mirror_generation",
        sa.Column("connection", sa.String(100), primary_key=True),
        # An endpoint, or "*" for a purge of the whole connection.
        sa.Column("endpoint", sa.String(100), primary_key=True),
        sa.Column("generation", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("mirror_generation")
