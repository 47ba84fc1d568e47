"""Distinct visitors per submitted search and day (keyed hashes, no addresses), so a
search becomes popular only when several visitors submitted it.

Revision ID: 0007_search_visitor
Revises: 0006_suggest
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_search_visitor"
down_revision = "0006_suggest"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "search_visitor",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("query_id", sa.Integer(), nullable=False),
        sa.Column("visitor", sa.String(length=32), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(
            ["query_id"],
            ["search_query.id"],
            name=op.f("fk_search_visitor_query_id_search_query"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_search_visitor")),
        sa.UniqueConstraint("query_id", "visitor", "day", name=op.f("uq_search_visitor_query_id")),
    )
    op.create_index("ix_search_visitor_query_id", "search_visitor", ["query_id"])


def downgrade():
    op.drop_table("search_visitor")
