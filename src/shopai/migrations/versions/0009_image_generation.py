"""Generated product images: requests (one job each), category prompt templates, and
which request made each image.

Revision ID: 0009_image_generation
Revises: 0008_assistant
Create Date: 2026-12-01
"""

import warnings

import sqlalchemy as sa
from alembic import op

# Rebuilding product_image (SQLite's way to add a foreign key) reflects the tables it
# refers to, and SQLite cannot reflect category's lower(name) index; it is not needed
# here, and the rebuilt table does not touch it.
UNREFLECTABLE = "Skipped unsupported reflection of expression-based index"

revision = "0009_image_generation"
down_revision = "0008_assistant"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "image_request",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("choose_first", sa.Boolean(), nullable=False),
        sa.Column("requested_by", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["product.id"],
            name=op.f("fk_image_request_product_id_product"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["job_id"], ["job.id"], name=op.f("fk_image_request_job_id_job"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_image_request")),
    )
    op.create_index("ix_image_request_product_id", "image_request", ["product_id"])
    op.create_table(
        "category_image_prompt",
        sa.Column("category_id", sa.Integer(), nullable=False),
        sa.Column("template", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["category_id"],
            ["category.id"],
            name=op.f("fk_category_image_prompt_category_id_category"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("category_id", name=op.f("pk_category_image_prompt")),
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", UNREFLECTABLE)
        _add_request_id()


def _add_request_id():
    with op.batch_alter_table("product_image") as batch:
        batch.add_column(sa.Column("request_id", sa.Integer(), nullable=True))
        batch.create_index("ix_product_image_request_id", ["request_id"])
        batch.create_foreign_key(
            op.f("fk_product_image_request_id_image_request"),
            "image_request",
            ["request_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", UNREFLECTABLE)
        _drop_request_id()
    op.drop_table("category_image_prompt")
    op.drop_table("image_request")


def _drop_request_id():
    with op.batch_alter_table("product_image") as batch:
        batch.drop_constraint(op.f("fk_product_image_request_id_image_request"), type_="foreignkey")
        batch.drop_index("ix_product_image_request_id")
        batch.drop_column("request_id")
