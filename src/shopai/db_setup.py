"""Per-connection database settings, and what each database needs from the app."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, event

from . import sqlite_checkpoints
from .search.tokens import index_text

if TYPE_CHECKING:
    from alembic.runtime.environment import NameFilterParentNames, NameFilterType


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # The full-text triggers index text through this function (see search.tokens).
    dbapi_connection.create_function("shopai_index_text", 1, index_text, deterministic=True)
    cursor = dbapi_connection.cursor()
    # WAL lets readers proceed during a write; foreign keys are off by default in SQLite.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    # Checkpoints run on a thread of their own (see sqlite_checkpoints); this is the net.
    cursor.execute(f"PRAGMA wal_autocheckpoint={sqlite_checkpoints.SAFETY_NET_PAGES}")
    cursor.execute(f"PRAGMA journal_size_limit={sqlite_checkpoints.LOG_SIZE_LIMIT_BYTES}")
    cursor.close()


def configure_engine(engine: Engine) -> None:
    if engine.dialect.name == "sqlite" and not event.contains(engine, "connect", _sqlite_pragmas):
        event.listen(engine, "connect", _sqlite_pragmas)
        sqlite_checkpoints.install(engine)
    if engine.dialect.name == "postgresql":
        # No triggers can call the normaliser there: the app writes the index itself.
        from .search import pg_index, pgvector

        pg_index.install()
        pgvector.install()


def include_name(
    name: str | None, type_: NameFilterType, parent_names: NameFilterParentNames
) -> bool:
    """What Alembic compares with the models (migrations/env.py, and the test that
    models and migrations agree). Left out: the search indexes made by hand, which
    autogenerate would otherwise drop: SQLite's FTS5 tables and PostgreSQL's
    product_fts (0001, 0010), the old GIN index, and pgvector's copy of each vector
    (0011, where the server has the extension)."""
    if type_ == "table" and name and name.startswith("product_fts"):
        return False
    if type_ == "column" and name == "embedding":
        return parent_names.get("table_name") != "product_embedding"
    return not (type_ == "index" and name == "ix_product_search")
