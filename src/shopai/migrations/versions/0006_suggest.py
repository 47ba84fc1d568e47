"""Search suggestions: submitted searches, blocked terms, model-made shopper queries per
product and query expansions.

Revision ID: 0006_suggest
Revises: 0005_search_index
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_suggest"
down_revision = "0005_search_index"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "search_query",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("query", sa.String(length=100), nullable=False),
        sa.Column("submitted", sa.Integer(), nullable=False),
        sa.Column("last_hits", sa.Integer(), nullable=True),
        sa.Column("clicks", sa.Integer(), nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_search_query")),
        sa.UniqueConstraint("query", name=op.f("uq_search_query_query")),
    )
    op.create_index("ix_search_query_submitted", "search_query", ["submitted"])

    op.create_table(
        "blocked_term",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("term", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_blocked_term")),
        sa.UniqueConstraint("term", name=op.f("uq_blocked_term_term")),
    )

    op.create_table(
        "product_query",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("text", sa.String(length=100), nullable=False),
        sa.Column("model", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["product.id"],
            name=op.f("fk_product_query_product_id_product"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_product_query")),
        sa.UniqueConstraint("product_id", "text", name=op.f("uq_product_query_product_id")),
    )
    op.create_index("ix_product_query_product_id", "product_query", ["product_id"])

    op.create_table(
        "query_expansion",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("query", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("suggestions", sa.JSON(), nullable=False),
        sa.Column("model", sa.String(length=128), nullable=True),
        sa.Column("error", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_query_expansion")),
        sa.UniqueConstraint("query", name=op.f("uq_query_expansion_query")),
    )


def downgrade():
    op.drop_table("query_expansion")
    op.drop_table("product_query")
    op.drop_table("blocked_term")
    op.drop_table("search_query")
