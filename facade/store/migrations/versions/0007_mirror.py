"""mirror: vendor records (bodies sealed), listing watermarks and webhook deliveries taken.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "mirror_record",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("connection", sa.String(100), nullable=False),
        sa.Column("endpoint", sa.String(100), nullable=False),
        sa.Column("vendor_id", sa.String(100), nullable=False),
        sa.Column("patient_id", sa.String(100), nullable=True),
        sa.Column("vendor_updated_at", TS, nullable=True),
        sa.Column("fetched_at", TS, nullable=False),
        sa.Column("body_enc", sa.LargeBinary(), nullable=False),
        sa.UniqueConstraint("connection", "endpoint", "vendor_id", name="uq_mirror_record_key"),
    )
    op.create_index(
        "ix_mirror_record_patient", "mirror_record", ["connection", "endpoint", "patient_id"]
    )
    op.create_index("ix_mirror_record_scan", "mirror_record", ["connection", "endpoint", "id"])
    op.create_table(
        "mirror_watermark",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("connection", sa.String(100), nullable=False),
        sa.Column("endpoint", sa.String(100), nullable=False),
        sa.Column("params_key", sa.String(500), nullable=False, server_default=""),
        sa.Column("synced_through", TS, nullable=True),
        sa.Column("backfill_cursor", sa.Text(), nullable=True),
        sa.Column("complete", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("records", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("calls_spent", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("updated_at", TS, nullable=False),
        sa.UniqueConstraint("connection", "endpoint", "params_key", name="uq_mirror_watermark_key"),
    )
    op.create_table(
        "mirror_delivery",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("connection", sa.String(100), nullable=False),
        sa.Column("delivery_id", sa.String(200), nullable=False),
        sa.Column("received_at", TS, nullable=False),
        sa.UniqueConstraint("connection", "delivery_id", name="uq_mirror_delivery_key"),
    )
    op.create_index("ix_mirror_delivery_received_at", "mirror_delivery", ["received_at"])


def downgrade() -> None:
    for table in ("mirror_delivery", "mirror_watermark", "mirror_record"):
        op.drop_table(table)
