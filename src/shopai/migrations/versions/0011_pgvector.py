"""pgvector, where PostgreSQL offers it: product_embedding.embedding, searched in place.

Added only when the server has the extension (created here if it is available and
this role may; a DBA can run `CREATE EXTENSION vector` first). Without it, and on
SQLite, nothing changes: the vectors are searched by the numpy index in each process
(see shopai.search.pgvector).

Revision ID: 0011_pgvector
Revises: 0010_postgres_search
Create Date: 2026-12-02
"""

import logging

import sqlalchemy as sa
from alembic import op

revision = "0011_pgvector"
down_revision = "0010_postgres_search"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")


def _pgvector(bind) -> bool:
    """The extension is there, or is created now if available to this role."""
    if bind.scalar(sa.text("SELECT count(*) FROM pg_extension WHERE extname = 'vector'")):
        return True
    if not bind.scalar(
        sa.text("SELECT count(*) FROM pg_available_extensions WHERE name = 'vector'")
    ):
        log.info("pgvector is not installed on this server: vectors stay in numpy")
        return False
    if not bind.scalar(sa.text("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")):
        log.warning("pgvector is available but needs CREATE EXTENSION vector by a superuser")
        return False
    op.execute("CREATE EXTENSION IF NOT EXISTS vector")
    return True


def upgrade():
    bind = op.get_bind()
    if bind.dialect.name != "postgresql" or not _pgvector(bind):
        return
    from shopai.search.pgvector import from_blob

    op.execute("ALTER TABLE product_embedding ADD COLUMN embedding vector")
    rows = bind.execute(sa.text("SELECT product_id, vector FROM product_embedding")).all()
    if rows:
        bind.execute(
            sa.text(
                "UPDATE product_embedding SET embedding = CAST(:embedding AS vector) "
                "WHERE product_id = :id"
            ),
            [{"id": row[0], "embedding": from_blob(row[1])} for row in rows],
        )


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE product_embedding DROP COLUMN IF EXISTS embedding")
