"""Usage ledger: one row per model call.

Revision ID: 0002_usage_ledger
Revises: 0001_catalog
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_usage_ledger"
down_revision = "0001_catalog"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "usage_record",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("feature", sa.String(length=32), nullable=False),
        sa.Column("backend", sa.String(length=32), nullable=False),
        sa.Column("model", sa.String(length=128), nullable=False),
        sa.Column("prompt_tokens", sa.Integer(), nullable=False),
        sa.Column("completion_tokens", sa.Integer(), nullable=False),
        sa.Column("images", sa.Integer(), nullable=False),
        sa.Column("latency_ms", sa.Integer(), nullable=False),
        sa.Column("cost_micro_usd", sa.Integer(), nullable=True),
        sa.Column("who", sa.String(length=64), nullable=True),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("error", sa.String(length=500), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_usage_record")),
    )
    op.create_index("ix_usage_record_created_at", "usage_record", ["created_at"])
    op.create_index("ix_usage_record_who", "usage_record", ["who"])
    op.create_index("ix_usage_record_feature_created", "usage_record", ["feature", "created_at"])


def downgrade():
    op.drop_table("usage_record")
