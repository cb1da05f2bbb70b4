"""bulk export state: jobs, parts with checkpoints, files, listing statistics, groups.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "export_job",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("client_id", sa.String(100), nullable=False),
        sa.Column("level", sa.String(10), nullable=False),
        sa.Column("group_id", sa.String(100), nullable=False, server_default=""),
        sa.Column("request_url", sa.Text(), nullable=False),
        sa.Column("parameters", sa.Text(), nullable=False),
        sa.Column("granted_types", sa.Text(), nullable=False, server_default=""),
        sa.Column("state", sa.String(12), nullable=False, server_default="queued"),
        sa.Column("phase", sa.String(40), nullable=False, server_default="planning"),
        sa.Column("estimated_calls", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("calls_spent", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("resources_written", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("resume_at", TS, nullable=True),
        sa.Column("failure", sa.Text(), nullable=False, server_default=""),
        sa.Column("transaction_time", TS, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("completed_at", TS, nullable=True),
        sa.Column("expires_at", TS, nullable=True),
    )
    op.create_index("ix_export_job_client_id", "export_job", ["client_id"])
    op.create_index("ix_export_job_state", "export_job", ["state"])
    op.create_table(
        "export_part",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("job_id", sa.String(40), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("resource_type", sa.String(64), nullable=False),
        sa.Column("source", sa.String(64), nullable=False, server_default=""),
        sa.Column("mode", sa.String(10), nullable=False),
        sa.Column("estimated_calls", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("state", sa.String(10), nullable=False, server_default="pending"),
        sa.Column("checkpoint", sa.Text(), nullable=False, server_default=""),
        sa.Column("error", sa.Text(), nullable=False, server_default=""),
    )
    op.create_index("ix_export_part_job_id", "export_part", ["job_id"])
    op.create_table(
        "export_file",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("job_id", sa.String(40), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("resource_type", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("size", sa.Integer(), nullable=False, server_default="0"),
    )
    op.create_index("ix_export_file_job_id", "export_file", ["job_id"])
    op.create_table(
        "export_endpoint_stat",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("listing", sa.String(200), nullable=False),
        sa.Column("records", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("pages", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_index(
        "ix_export_endpoint_stat_listing", "export_endpoint_stat", ["listing"], unique=True
    )
    op.create_table(
        "bulk_group",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False, server_default=""),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "bulk_group_member",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("group_id", sa.String(64), nullable=False),
        sa.Column("patient_id", sa.String(64), nullable=False),
    )
    op.create_index("ix_bulk_group_member_group_id", "bulk_group_member", ["group_id"])


def downgrade() -> None:
    for table in (
        "bulk_group_member",
        "bulk_group",
        "export_endpoint_stat",
        "export_file",
        "export_part",
        "export_job",
    ):
        op.drop_table(table)
