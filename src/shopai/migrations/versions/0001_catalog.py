"""Catalog, images and users, with full-text search.

Revision ID: 0001_catalog
Revises:
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0001_catalog"
down_revision = None
branch_labels = None
depends_on = None

# SQLite: an FTS5 index over name, description and category name, kept current by
# triggers. Column weights (name counts most) are stored as the table's rank function.
SQLITE_FTS = [
    """CREATE VIRTUAL TABLE product_fts USING fts5(
        name, description, category,
        tokenize = 'unicode61 remove_diacritics 2',
        prefix = '2 3'
    )""",
    "INSERT INTO product_fts(product_fts, rank) VALUES ('rank', 'bm25(10.0, 1.0, 4.0)')",
    """CREATE TRIGGER product_fts_insert AFTER INSERT ON product BEGIN
        INSERT INTO product_fts(rowid, name, description, category)
        VALUES (new.id, new.name, new.description,
                (SELECT name FROM category WHERE id = new.category_id));
    END""",
    """CREATE TRIGGER product_fts_update AFTER UPDATE OF name, description, category_id ON product BEGIN
        DELETE FROM product_fts WHERE rowid = old.id;
        INSERT INTO product_fts(rowid, name, description, category)
        VALUES (new.id, new.name, new.description,
                (SELECT name FROM category WHERE id = new.category_id));
    END""",
    """CREATE TRIGGER product_fts_delete AFTER DELETE ON product BEGIN
        DELETE FROM product_fts WHERE rowid = old.id;
    END""",
    """CREATE TRIGGER category_fts_rename AFTER UPDATE OF name ON category BEGIN
        UPDATE product_fts SET category = new.name
        WHERE rowid IN (SELECT id FROM product WHERE category_id = new.id);
    END""",
]

# PostgreSQL: a GIN index on the same expression the search service matches against.
POSTGRES_FTS = [
    """CREATE INDEX ix_product_search ON product
       USING gin (to_tsvector('simple', name || ' ' || description))""",
]


def upgrade():
    op.create_table(
        "category",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("slug", sa.String(length=100), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_category")),
        sa.UniqueConstraint("slug", name=op.f("uq_category_slug")),
    )
    op.create_index("uq_category_name_lower", "category", [sa.text("lower(name)")], unique=True)
    op.create_table(
        "user",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("password_hash", sa.String(length=256), nullable=False),
        sa.Column("is_admin", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user")),
        sa.UniqueConstraint("email", name=op.f("uq_user_email")),
    )
    op.create_table(
        "product",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("slug", sa.String(length=220), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("price", sa.Numeric(precision=10, scale=2), nullable=False),
        sa.Column("category_id", sa.Integer(), nullable=False),
        sa.Column("featured", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("price >= 0", name=op.f("ck_product_price_not_negative")),
        sa.ForeignKeyConstraint(
            ["category_id"],
            ["category.id"],
            name=op.f("fk_product_category_id_category"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_product")),
        sa.UniqueConstraint("slug", name=op.f("uq_product_slug")),
    )
    op.create_index("ix_product_category_price", "product", ["category_id", "price"])
    op.create_index("ix_product_created_at", "product", ["created_at"])
    op.create_index("ix_product_price", "product", ["price"])
    op.create_index("ix_product_name", "product", ["name"])
    op.create_table(
        "product_image",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("backend", sa.String(length=64), nullable=True),
        sa.Column("model", sa.String(length=128), nullable=True),
        sa.Column("prompt", sa.Text(), nullable=True),
        sa.Column("seed", sa.Integer(), nullable=True),
        sa.Column("chosen", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["product.id"],
            name=op.f("fk_product_image_product_id_product"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_product_image")),
    )
    op.create_index("ix_product_image_content_hash", "product_image", ["content_hash"])
    op.create_index("ix_product_image_product_id", "product_image", ["product_id"])

    dialect = op.get_bind().dialect.name
    for statement in {"sqlite": SQLITE_FTS, "postgresql": POSTGRES_FTS}.get(dialect, []):
        op.execute(statement)


def downgrade():
    if op.get_bind().dialect.name == "sqlite":
        for trigger in (
            "product_fts_insert",
            "product_fts_update",
            "product_fts_delete",
            "category_fts_rename",
        ):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute("DROP TABLE IF EXISTS product_fts")
    op.drop_table("product_image")
    op.drop_table("product")
    op.drop_table("user")
    op.drop_table("category")
