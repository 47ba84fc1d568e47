"""PostgreSQL's full-text index: `product_fts`, one tsvector per product, written by the app.

On SQLite, triggers keep the FTS5 table current and call the app's normaliser
(`shopai_index_text`). PostgreSQL cannot call Python, so the app writes the
documents (`tsearch.document`) itself, after every flush that adds or edits a
product or renames a category: the same moment, in the same transaction, as the
triggers fire. A deleted product's row goes with it (foreign key, ON DELETE CASCADE).

Writes that bypass the ORM (bulk `update(Product)` statements, SQL by hand) are not
seen: `shopai search reindex` rebuilds the whole index (migration 0010 does too).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    Integer,
    MetaData,
    Table,
    bindparam,
    event,
    inspect,
    select,
)
from sqlalchemy.dialects.postgresql import TSVECTOR, insert
from sqlalchemy.orm import Session, UOWTransaction

from ..catalog.models import Category, Product
from . import tsearch

# Not in the app's metadata: the table exists on PostgreSQL only (SQLite's is FTS5),
# made by the migrations, and autogenerate leaves product_fts* alone.
product_fts = Table(
    "product_fts",
    MetaData(),
    Column("product_id", Integer, primary_key=True),  # product.id, ON DELETE CASCADE
    Column("document", TSVECTOR, nullable=False),
)
BATCH = 500


def _documents(connection: Connection, condition: Any) -> list[dict[str, Any]]:
    rows = connection.execute(
        select(Product.id, Product.name, Category.name, Product.description)
        .join(Category, Category.id == Product.category_id)
        .where(condition)
    )
    return [
        {"product_id": row[0], "document": tsearch.document(row[1], row[2], row[3])} for row in rows
    ]


def _upsert(connection: Connection, documents: list[dict[str, Any]]) -> None:
    if not documents:
        return
    statement = insert(product_fts).values(
        product_id=bindparam("product_id"),
        document=bindparam("document", type_=TSVECTOR).cast(TSVECTOR),
    )
    statement = statement.on_conflict_do_update(
        index_elements=[product_fts.c.product_id],
        set_={"document": statement.excluded.document},
    )
    for start in range(0, len(documents), BATCH):
        connection.execute(statement, documents[start : start + BATCH])


def reindex(connection: Connection, product_ids: Iterable[int] | None = None) -> None:
    """(Re)write the documents of `product_ids`, or of every product."""
    if product_ids is None:
        connection.execute(product_fts.delete())
        last = 0
        while True:  # in id order, a batch at a time: a big catalog never sits in memory
            ids = list(
                connection.scalars(
                    select(Product.id).where(Product.id > last).order_by(Product.id).limit(BATCH)
                )
            )
            if not ids:
                return
            _upsert(connection, _documents(connection, Product.id.in_(ids)))
            last = ids[-1]
    ids = sorted(set(product_ids))
    for start in range(0, len(ids), BATCH):
        _upsert(connection, _documents(connection, Product.id.in_(ids[start : start + BATCH])))


def _changed(obj: Any, *names: str) -> bool:
    state = inspect(obj)
    return any(state.attrs[name].history.has_changes() for name in names)


def _after_flush(session: Session, _context: UOWTransaction) -> None:
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        return
    products = {
        obj.id
        for obj in (*session.new, *session.dirty)
        if isinstance(obj, Product)
        and obj not in session.deleted
        and (obj in session.new or _changed(obj, "name", "description", "category_id", "category"))
    }
    renamed = [
        obj.id
        for obj in session.dirty
        if isinstance(obj, Category) and obj not in session.deleted and _changed(obj, "name")
    ]
    if renamed:
        products.update(
            connection.scalars(select(Product.id).where(Product.category_id.in_(renamed)))
        )
    if products:
        reindex(connection, products)


def install() -> None:
    """Keep `product_fts` current from every session (a no-op on SQLite). Once per process."""
    if not event.contains(Session, "after_flush", _after_flush):
        event.listen(Session, "after_flush", _after_flush)
