"""Product search: full-text match plus category and price filters.

SQLite uses an FTS5 index kept current by triggers (see the migration), so a
search never scans the product table with LIKE. PostgreSQL uses a GIN-indexed
`to_tsvector` expression. Words match as prefixes, so "headph" finds headphones
while the shopper is still typing.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from flask_sqlalchemy.pagination import Pagination
from sqlalchemy import Select, column, func, literal_column, select, table

from ..catalog.models import Category, Product
from ..extensions import db
from ..text import words

Sort = Literal["relevance", "price_asc", "price_desc", "newest", "name"]
SORTS: dict[str, str] = {
    "relevance": "Best match",
    "price_asc": "Price: low to high",
    "price_desc": "Price: high to low",
    "newest": "Newest",
    "name": "Name",
}

_fts = table("product_fts", column("rowid"), column("rank"), column("product_fts"))
PG_SEARCH_VECTOR = func.to_tsvector(
    literal_column("'simple'"), Product.name + literal_column("' '") + Product.description
)


@dataclass(frozen=True)
class SearchFilters:
    q: str = ""
    category: Category | None = None
    min_price: Decimal | None = None
    max_price: Decimal | None = None
    sort: Sort = "relevance"


MIN_PREFIX = 2  # one-letter prefixes would match most of the index; they match whole words


def _fts5_query(terms: list[str]) -> str:
    # Each word becomes a quoted term, so FTS5 operators typed by a shopper ("NOT", "*",
    # quotes, column filters) are plain text; words of 2+ letters match as prefixes.
    return " ".join(
        '"{}"{}'.format(term.replace('"', '""'), "*" if len(term) >= MIN_PREFIX else "")
        for term in terms
    )


def _tsquery(terms: list[str]):
    return func.to_tsquery(
        "simple",
        " & ".join(f"{term.lower()}{':*' if len(term) >= MIN_PREFIX else ''}" for term in terms),
    )


def _match(query: Select[Product], terms: list[str]) -> Select[Product]:
    if db.engine.dialect.name == "sqlite":
        return query.join(_fts, _fts.c.rowid == Product.id).where(
            _fts.c.product_fts.op("MATCH")(_fts5_query(terms))
        )
    return query.where(PG_SEARCH_VECTOR.op("@@")(_tsquery(terms)))


def _relevance(terms: list[str]):
    if db.engine.dialect.name == "sqlite":
        return _fts.c.rank  # bm25 with column weights set in the migration
    return func.ts_rank(PG_SEARCH_VECTOR, _tsquery(terms)).desc()


def search_products(filters: SearchFilters, page: int, per_page: int) -> Pagination:
    return db.paginate(
        search_query(filters), page=page, per_page=per_page, error_out=False, count=True
    )


def search_query(filters: SearchFilters) -> Select[Product]:
    """The whole search as one SELECT (also what the query-plan test inspects)."""
    terms = words(filters.q)
    query = select(Product)
    if terms:
        query = _match(query, terms)
    if filters.category is not None:
        query = query.where(Product.category_id == filters.category.id)
    if filters.min_price is not None:
        query = query.where(Product.price >= filters.min_price)
    if filters.max_price is not None:
        query = query.where(Product.price <= filters.max_price)

    sort = filters.sort if terms or filters.sort != "relevance" else "name"
    order = {
        "price_asc": (Product.price.asc(),),
        "price_desc": (Product.price.desc(),),
        "newest": (Product.created_at.desc(),),
        "name": (Product.name.asc(),),
    }.get(sort) or (_relevance(terms),)
    return query.order_by(*order, Product.id)
