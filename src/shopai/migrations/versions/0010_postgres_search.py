"""PostgreSQL full-text search with SQLite's tokens: a product_fts table of tsvectors.

0001's GIN index over to_tsvector('simple', name || ' ' || description) split text
with PostgreSQL's parser: no CJK bigrams, no joined compounds, no category. The app
now writes each product's document itself, from the same normaliser SQLite's
triggers call (see shopai.search.pg_index); existing products are indexed here.
SQLite is unchanged.

Revision ID: 0010_postgres_search
Revises: 0009_image_generation
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import TSVECTOR

revision = "0010_postgres_search"
down_revision = "0009_image_generation"
branch_labels = None
depends_on = None


def upgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    from shopai.search.pg_index import reindex

    op.execute("DROP INDEX IF EXISTS ix_product_search")
    op.create_table(
        "product_fts",
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("document", TSVECTOR(), nullable=False),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["product.id"],
            name=op.f("fk_product_fts_product_id_product"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("product_id", name=op.f("pk_product_fts")),
    )
    op.execute("CREATE INDEX ix_product_fts_document ON product_fts USING gin (document)")
    reindex(op.get_bind())


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_table("product_fts")
    op.execute(
        "CREATE INDEX ix_product_search ON product "
        "USING gin (to_tsvector('simple', name || ' ' || description))"
    )
