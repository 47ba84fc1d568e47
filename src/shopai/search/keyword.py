"""Full-text matching behind a few small functions, whatever the database.

SQLite uses an FTS5 index kept current by triggers (see the migrations), so a
search never scans the product table with LIKE. PostgreSQL uses a GIN-indexed
`to_tsvector` expression. Callers never branch on the engine.

The functions take the shopper's text, or `Words`: the same text as the database
reads it, which can also be bind parameters, so that a statement built from these
functions can be built once and run for any query (the search page's does).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    String,
    bindparam,
    column,
    func,
    literal_column,
    select,
    table,
)

from ..catalog.models import Product
from ..extensions import db
from .tokens import MIN_PREFIX, fts5_query, query_terms

_fts = table("product_fts", column("rowid"), column("rank"), column("product_fts"))
PG_SEARCH_VECTOR = func.to_tsvector(
    literal_column("'simple'"), Product.name + literal_column("' '") + Product.description
)
PG_NAME_VECTOR = func.to_tsvector(literal_column("'simple'"), Product.name)


def _sqlite() -> bool:
    return db.engine.dialect.name == "sqlite"


@dataclass(frozen=True)
class Words:
    """A query as the database matches it. SQLite: FTS5 expressions for every field,
    for the name alone, and for every field but not the name alone; PostgreSQL: the
    text of one tsquery, for all three. Values (`of`) or bind parameters (`bound`)."""

    every_field: Any
    in_names: Any
    not_in_names: Any

    @classmethod
    def of(cls, q: str) -> Words:
        if not _sqlite():
            text = " & ".join(
                f"{term.lower()}{':*' if len(term) >= MIN_PREFIX else ''}"
                for term in query_terms(q)
            )
            return cls(text, text, text)
        every_field = fts5_query(q)
        in_names = f"name : ({every_field})"
        return cls(every_field, in_names, f"({every_field}) NOT {in_names}")

    @classmethod
    def bound(cls) -> Words:
        """Placeholders: run the statement with `Words.params(q)`."""
        return cls(*(bindparam(name, type_=String) for name in _PARAMETERS))

    @classmethod
    def params(cls, q: str) -> dict[str, str]:
        words = cls.of(q)
        return {name: getattr(words, name) for name in _PARAMETERS}


_PARAMETERS = ("every_field", "in_names", "not_in_names")


def _words(q: str | Words) -> Words:
    return q if isinstance(q, Words) else Words.of(q)


def _fts_match(expression: Any) -> ColumnElement[bool]:
    return _fts.c.product_fts.op("MATCH")(expression)


def _tsquery(text: Any) -> Any:
    return func.to_tsquery("simple", text)


def has_terms(q: str) -> bool:
    return bool(query_terms(q))


def matching_ids_query(q: str | Words, *, in_names: bool = False) -> Select[Any]:
    """The ids of the products matching `q` (in the name alone with `in_names`)."""
    words = _words(q)
    if _sqlite():
        return select(_fts.c.rowid).where(
            _fts_match(words.in_names if in_names else words.every_field)
        )
    vector = PG_NAME_VECTOR if in_names else PG_SEARCH_VECTOR
    return select(Product.id).where(vector.op("@@")(_tsquery(words.every_field)))


def matches(q: str | Words) -> ColumnElement[bool]:
    """A condition on `Product`: the product matches every term of `q`."""
    if _sqlite():
        return Product.id.in_(matching_ids_query(q).scalar_subquery())
    return PG_SEARCH_VECTOR.op("@@")(_tsquery(_words(q).every_field))


def matching_ids(q: str, *, in_names: bool = False) -> set[int]:
    """Every product matching `q` (in the name alone with `in_names`). One pass over the
    index: asking "does product X match" per id would run the query once per id."""
    return set(db.session.scalars(matching_ids_query(q, in_names=in_names)))


def names_matching(q: str, ids: Sequence[int]) -> set[int]:
    """Those of `ids` whose name alone matches every term of `q`: an exact product or
    brand name must stay first, whatever the vectors say."""
    return matching_ids(q, in_names=True) & set(ids) if ids else set()


def counting(query: Select[Any] | None, q: str | Words, *, in_names: bool = False) -> Select[Any]:
    """The statement behind `count`, to run alone or as a subquery of another."""
    if query is None and _sqlite():
        words = _words(q)
        expression = words.in_names if in_names else words.every_field
        return select(func.count()).select_from(_fts).where(_fts_match(expression))
    counted = select(func.count(Product.id)) if query is None else query
    if not _sqlite():
        vector = PG_NAME_VECTOR if in_names else PG_SEARCH_VECTOR
        return counted.where(vector.op("@@")(_tsquery(_words(q).every_field)))
    # The matches' ids, not a join: joined, SQLite may walk a category's products through
    # its index and run the full-text query once per product (100 times slower).
    ids = matching_ids_query(q, in_names=in_names)
    return counted.where(Product.id.in_(ids.scalar_subquery()))


def count(query: Select[Any] | None, q: str | Words, *, in_names: bool = False) -> int:
    """How many products of `query` (a count over `Product` with filters; None for the
    whole catalog, counted in the index alone) match `q` (in the name with `in_names`)."""
    return int(db.session.scalar(counting(query, q, in_names=in_names)) or 0)


def ranked(query: Select[Any] | None, q: str) -> Select[Any]:
    """`query` (ids of `Product`) restricted to matches of `q`, best first: bm25 with the
    name weighted most (SQLite), ts_rank (PostgreSQL). With None, the ids of the whole
    catalog's matches, ranked in the SQLite index alone (joining the product table to
    every match, to filter nothing, doubled the cost). Every match is scored: for a page
    of results, `ranking` orders them for less."""
    words = Words.of(q)
    if _sqlite():
        condition = _fts_match(words.every_field)
        if query is None:  # the index's rowid is the product's id (see the migrations)
            return select(_fts.c.rowid).where(condition).order_by(_fts.c.rank, _fts.c.rowid)
        joined = query.join(_fts, _fts.c.rowid == Product.id).where(condition)
        return joined.order_by(_fts.c.rank, Product.id)
    text = _tsquery(words.every_field)
    return (
        (select(Product.id) if query is None else query)
        .where(PG_SEARCH_VECTOR.op("@@")(text))
        .order_by(func.ts_rank(PG_SEARCH_VECTOR, text).desc(), Product.id)
    )


@dataclass(frozen=True)
class Tier:
    """Matches of a query in one tier (see `tier`): their ids, as a select whose first
    column is `id`, and the columns to order them by (`score`, lower is better; `id`)."""

    ids: Select[Any]
    id: ColumnElement[int]
    score: ColumnElement[Any]


def tier(query: Select[Any] | None, q: str | Words, *, names: bool) -> Tier:
    """The matches of `q` among `query` (ids of `Product` with filters; None for the
    whole catalog, read from the SQLite index alone) whose name holds every word of `q`
    (`names`), scored by the name alone; or the other matches, scored over every field
    (bm25 with the name weighted most; ts_rank on PostgreSQL)."""
    words = _words(q)
    if _sqlite():
        condition = _fts_match(words.in_names if names else words.not_in_names)
        if query is None:  # the index's rowid is the product's id (see the migrations)
            ids = select(_fts.c.rowid.label("id")).where(condition)
            return Tier(ids, _fts.c.rowid, _fts.c.rank)
        joined = query.join(_fts, _fts.c.rowid == Product.id).where(condition)
        return Tier(joined, Product.id.expression, _fts.c.rank)
    text = _tsquery(words.every_field)
    base = select(Product.id) if query is None else query
    in_names = PG_NAME_VECTOR.op("@@")(text)
    product_id = Product.id.expression
    if names:
        return Tier(base.where(in_names), product_id, -func.ts_rank(PG_NAME_VECTOR, text))
    return Tier(
        base.where(PG_SEARCH_VECTOR.op("@@")(text), ~in_names),
        product_id,
        -func.ts_rank(PG_SEARCH_VECTOR, text),
    )
