"""Per-connection database settings, and what each database needs from the app."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, event

from .search.tokens import index_text


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # The full-text triggers index text through this function (see search.tokens).
    dbapi_connection.create_function("shopai_index_text", 1, index_text, deterministic=True)
    cursor = dbapi_connection.cursor()
    # WAL lets readers proceed during a write; foreign keys are off by default in SQLite.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def configure_engine(engine: Engine) -> None:
    if engine.dialect.name == "sqlite" and not event.contains(engine, "connect", _sqlite_pragmas):
        event.listen(engine, "connect", _sqlite_pragmas)
    if engine.dialect.name == "postgresql":
        # No triggers can call the normaliser there: the app writes the index itself.
        from .search import pg_index

        pg_index.install()
