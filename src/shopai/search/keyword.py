"""Full-text matching behind a few small functions, whatever the database.

SQLite uses an FTS5 index kept current by triggers (see the migrations), so a
search never scans the product table with LIKE. PostgreSQL uses a GIN-indexed table
of tsvectors holding the same tokens, which the app writes (`pg_index`, `tsearch`).
Callers never branch on the engine.

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
    cast,
    column,
    func,
    select,
    table,
)
from sqlalchemy.dialects.postgresql import TSQUERY

from ..catalog.models import Product
from ..extensions import db
from . import tsearch
from .pg_index import product_fts as _pg_fts
from .statements import built
from .tokens import fts5_query, query_terms

RANK_BY_LENGTH = 2  # ts_rank's normalization: divided by the document's length
_fts = table("product_fts", column("rowid"), column("rank"), column("product_fts"))


def _sqlite() -> bool:
    return db.engine.dialect.name == "sqlite"


@dataclass(frozen=True)
class Words:
    """A query as the database matches it: for every field, for the name alone, and
    for every field but not the name alone. SQLite: FTS5 expressions; PostgreSQL:
    tsqueries (see `tsearch`). Values (`of`) or bind parameters (`bound`)."""

    every_field: Any
    in_names: Any
    not_in_names: Any

    @classmethod
    def of(cls, q: str) -> Words:
        if not _sqlite():
            return cls(*tsearch.tsquery(q))
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


@dataclass(frozen=True)
class _Index:
    """The full-text index table of this database: its product id column, the match
    condition of an expression (a `Words` field) and the score of a match, lower first
    (FTS5's rank column is bm25 of the statement's MATCH; PostgreSQL's is ts_rank)."""

    table: Any
    id: ColumnElement[int]

    def match(self, expression: Any) -> ColumnElement[bool]:
        if self.table is _fts:
            return _fts.c.product_fts.op("MATCH")(expression)
        return _pg_fts.c.document.op("@@")(cast(expression, TSQUERY))

    def score(self, expression: Any) -> ColumnElement[Any]:
        if self.table is _fts:
            return _fts.c.rank
        # Normalised by document length (2), as bm25 favours short names: on the demo
        # catalog this puts half the results of common queries where SQLite puts them,
        # against a fifth unnormalised. (The matches themselves are the same.)
        return -func.ts_rank(_pg_fts.c.document, cast(expression, TSQUERY), RANK_BY_LENGTH)


_SQLITE_INDEX = _Index(_fts, _fts.c.rowid)
_PG_INDEX = _Index(_pg_fts, _pg_fts.c.product_id)


def _index() -> _Index:
    return _SQLITE_INDEX if _sqlite() else _PG_INDEX


def has_terms(q: str) -> bool:
    return bool(query_terms(q))


def matching_ids_query(q: str | Words, *, in_names: bool = False) -> Select[Any]:
    """The ids of the products matching `q` (in the name alone with `in_names`)."""
    words = _words(q)
    index = _index()
    return select(index.id).where(index.match(words.in_names if in_names else words.every_field))


def matches(q: str | Words) -> ColumnElement[bool]:
    """A condition on `Product`: the product matches every term of `q`."""
    return Product.id.in_(matching_ids_query(q).scalar_subquery())


def matching_ids(q: str | dict[str, Any], *, in_names: bool = False) -> set[int]:
    """Every product matching `q` (in the name alone with `in_names`); `q` may be the
    parameters of a search, holding its `Words.params` (other keys are ignored). One
    pass over the index: asking "does product X match" per id would run the query once
    per id."""
    statement = built(
        ("matching_ids", in_names), lambda: matching_ids_query(Words.bound(), in_names=in_names)
    )
    params = q if isinstance(q, dict) else Words.params(q)
    return set(db.session.scalars(statement, params))


def names_matching(q: str | dict[str, Any], ids: Sequence[int]) -> set[int]:
    """Those of `ids` whose name alone matches every term of `q` (or of the search whose
    parameters `q` is, as for `matching_ids`):
    an exact product or brand name must stay first, whatever the vectors say."""
    return matching_ids(q, in_names=True) & set(ids) if ids else set()


def counting(query: Select[Any] | None, q: str | Words, *, in_names: bool = False) -> Select[Any]:
    """The statement behind `count`, to run alone or as a subquery of another."""
    if query is None:
        words = _words(q)
        expression = words.in_names if in_names else words.every_field
        index = _index()
        return select(func.count()).select_from(index.table).where(index.match(expression))
    # The matches' ids, not a join: joined, SQLite may walk a category's products through
    # its index and run the full-text query once per product (100 times slower).
    ids = matching_ids_query(q, in_names=in_names)
    return query.where(Product.id.in_(ids.scalar_subquery()))


def count(query: Select[Any] | None, q: str | Words, *, in_names: bool = False) -> int:
    """How many products of `query` (a count over `Product` with filters; None for the
    whole catalog, counted in the index alone) match `q` (in the name with `in_names`)."""
    return int(db.session.scalar(counting(query, q, in_names=in_names)) or 0)


def ranked(query: Select[Any] | None, q: str | Words) -> Select[Any]:
    """`query` (ids of `Product`) restricted to matches of `q`, best first: bm25 with the
    name weighted most (SQLite), ts_rank with the same weights (PostgreSQL). With None,
    the ids of the whole catalog's matches, ranked in the index alone (joining the
    product table to every match, to filter nothing, doubled the cost on SQLite). Every
    match is scored: for a page of results, `ranking` orders them for less."""
    expression = _words(q).every_field
    index = _index()
    condition, score = index.match(expression), index.score(expression)
    if query is None:  # the index's id is the product's id (see the migrations)
        return select(index.id).where(condition).order_by(score, index.id)
    joined = query.join(index.table, index.id == Product.id).where(condition)
    return joined.order_by(score, Product.id)


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
    expression = words.in_names if names else words.not_in_names
    index = _index()
    condition, score = index.match(expression), index.score(expression)
    if query is None:  # the index's id is the product's id (see the migrations)
        return Tier(select(index.id.label("id")).where(condition), index.id, score)
    joined = query.join(index.table, index.id == Product.id).where(condition)
    return Tier(joined, Product.id.expression, score)
