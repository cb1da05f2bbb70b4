"""shared ledger: vendor calls and client requests counted in the database, so every process
of a deployment spends one vendor quota and one per-client rate limit.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ledger_key",
        sa.Column("key", sa.String(200), primary_key=True),
        # The vendor's 429 named this moment (seconds since the epoch); nothing goes out before.
        sa.Column("blocked_until", sa.Float(), nullable=True),
    )
    op.create_table(
        "ledger_entry",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
    )
    op.create_index("ix_ledger_entry_key_at", "ledger_entry", ["key", "at"])


def downgrade() -> None:
    op.drop_index("ix_ledger_entry_key_at", table_name="ledger_entry")
    op.drop_table("ledger_entry")
    op.drop_table("ledger_key")
