"""Search by meaning and in Chinese: product vectors, and an index that splits CJK text.

The FTS triggers now store `shopai_index_text(...)` of each field (CJK bigrams,
joined compounds; see shopai.search.tokens), a function the app registers on every
SQLite connection. Existing rows are re-indexed here.

Revision ID: 0005_search_index
Revises: 0004_jobs
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_search_index"
down_revision = "0004_jobs"
branch_labels = None
depends_on = None

TRIGGERS = ("product_fts_insert", "product_fts_update", "product_fts_delete", "category_fts_rename")


def _sqlite_fts(text: str) -> list[str]:
    """The triggers of 0001, with every indexed field passed through `text`."""
    category = text.format("(SELECT name FROM category WHERE id = new.category_id)")
    return [
        f"""CREATE TRIGGER product_fts_insert AFTER INSERT ON product BEGIN
            INSERT INTO product_fts(rowid, name, description, category)
            VALUES (new.id, {text.format("new.name")}, {text.format("new.description")},
                    {category});
        END""",
        f"""CREATE TRIGGER product_fts_update AFTER UPDATE OF name, description, category_id
            ON product BEGIN
            DELETE FROM product_fts WHERE rowid = old.id;
            INSERT INTO product_fts(rowid, name, description, category)
            VALUES (new.id, {text.format("new.name")}, {text.format("new.description")},
                    {category});
        END""",
        """CREATE TRIGGER product_fts_delete AFTER DELETE ON product BEGIN
            DELETE FROM product_fts WHERE rowid = old.id;
        END""",
        f"""CREATE TRIGGER category_fts_rename AFTER UPDATE OF name ON category BEGIN
            UPDATE product_fts SET category = {text.format("new.name")}
            WHERE rowid IN (SELECT id FROM product WHERE category_id = new.id);
        END""",
        "DELETE FROM product_fts",
        f"""INSERT INTO product_fts(rowid, name, description, category)
            SELECT product.id, {text.format("product.name")},
                   {text.format("product.description")}, {text.format("category.name")}
            FROM product JOIN category ON category.id = product.category_id""",
    ]


def _replace_triggers(text: str) -> None:
    for trigger in TRIGGERS:
        op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    for statement in _sqlite_fts(text):
        op.execute(statement)


def upgrade():
    op.create_table(
        "product_embedding",
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("model", sa.String(length=128), nullable=False),
        sa.Column("text_hash", sa.String(length=64), nullable=False),
        sa.Column("dimensions", sa.Integer(), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["product.id"],
            name=op.f("fk_product_embedding_product_id_product"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("product_id", name=op.f("pk_product_embedding")),
    )
    op.create_index(
        "ix_product_embedding_model_updated", "product_embedding", ["model", "updated_at"]
    )
    if op.get_bind().dialect.name == "sqlite":
        _replace_triggers("shopai_index_text({})")


def downgrade():
    if op.get_bind().dialect.name == "sqlite":
        _replace_triggers("{}")
    op.drop_table("product_embedding")
