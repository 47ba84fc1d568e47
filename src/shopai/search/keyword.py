"""Full-text matching behind three small functions, whatever the database.

SQLite uses an FTS5 index kept current by triggers (see the migrations), so a
search never scans the product table with LIKE. PostgreSQL uses a GIN-indexed
`to_tsvector` expression. Callers never branch on the engine.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, column, func, literal_column, select, table

from ..catalog.models import Product
from ..extensions import db
from .tokens import MIN_PREFIX, fts5_query, query_terms

_fts = table("product_fts", column("rowid"), column("rank"), column("product_fts"))
PG_SEARCH_VECTOR = func.to_tsvector(
    literal_column("'simple'"), Product.name + literal_column("' '") + Product.description
)


def _sqlite() -> bool:
    return db.engine.dialect.name == "sqlite"


def _tsquery(q: str) -> Any:
    return func.to_tsquery(
        "simple",
        " & ".join(
            f"{term.lower()}{':*' if len(term) >= MIN_PREFIX else ''}" for term in query_terms(q)
        ),
    )


def has_terms(q: str) -> bool:
    return bool(query_terms(q))


def matches(q: str) -> ColumnElement[bool]:
    """A condition on `Product`: the product matches every term of `q`."""
    if _sqlite():
        matching = select(_fts.c.rowid).where(_fts.c.product_fts.op("MATCH")(fts5_query(q)))
        return Product.id.in_(matching.scalar_subquery())
    return PG_SEARCH_VECTOR.op("@@")(_tsquery(q))


def matching_ids(q: str, *, in_names: bool = False) -> set[int]:
    """Every product matching `q` (in the name alone with `in_names`). One pass over the
    index: asking "does product X match" per id would run the query once per id."""
    if _sqlite():
        expression = f"name : ({fts5_query(q)})" if in_names else fts5_query(q)
        query = select(_fts.c.rowid).where(_fts.c.product_fts.op("MATCH")(expression))
    else:
        vector = (
            func.to_tsvector(literal_column("'simple'"), Product.name)
            if in_names
            else PG_SEARCH_VECTOR
        )
        query = select(Product.id).where(vector.op("@@")(_tsquery(q)))
    return set(db.session.scalars(query))


def names_matching(q: str, ids: Sequence[int]) -> set[int]:
    """Those of `ids` whose name alone matches every term of `q`: an exact product or
    brand name must stay first, whatever the vectors say."""
    return matching_ids(q, in_names=True) & set(ids) if ids else set()


def count(query: Select[Any] | None, q: str) -> int:
    """How many products of `query` (a count over `Product` with filters; None for the
    whole catalog, counted in the index alone) match `q`."""
    if query is None and _sqlite():
        everything = select(func.count()).where(_fts.c.product_fts.op("MATCH")(fts5_query(q)))
        return int(db.session.scalar(everything.select_from(_fts)) or 0)
    query = select(func.count(Product.id)) if query is None else query
    if _sqlite():
        joined = query.join(_fts, _fts.c.rowid == Product.id).where(
            _fts.c.product_fts.op("MATCH")(fts5_query(q))
        )
    else:
        joined = query.where(PG_SEARCH_VECTOR.op("@@")(_tsquery(q)))
    return int(db.session.scalar(joined) or 0)


def ranked(query: Select[Any], q: str) -> Select[Any]:
    """`query` (over `Product`) restricted to matches of `q`, best first: bm25 with the
    name weighted most (SQLite), ts_rank (PostgreSQL)."""
    if _sqlite():
        return (
            query.join(_fts, _fts.c.rowid == Product.id)
            .where(_fts.c.product_fts.op("MATCH")(fts5_query(q)))
            .order_by(_fts.c.rank, Product.id)
        )
    return query.where(PG_SEARCH_VECTOR.op("@@")(_tsquery(q))).order_by(
        func.ts_rank(PG_SEARCH_VECTOR, _tsquery(q)).desc(), Product.id
    )
