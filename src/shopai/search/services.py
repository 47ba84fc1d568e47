"""Product search: words and meaning fused, with category and price filters.

`search_products` is what every feature calls (the search page, the API, and the
AI features after them). It ranks by reciprocal rank fusion of the full-text
ranking (`keyword`) and the nearest vectors (`vectors`), so "laptop for college"
finds laptops although no product says "college", while a product whose name holds
every word of the query still comes first. Vectors below a similarity floor are
dropped, so a query that matches nothing well says so instead of listing the
nearest junk; without vectors (none computed yet, backend down) search is full-text
alone, in the order of `ranking` (names first; broad words rank a window of their
newest matches), which fetches only the page shown.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from flask import current_app
from flask_sqlalchemy.pagination import Pagination
from sqlalchemy import Select, bindparam, func, or_, select
from sqlalchemy.orm import joinedload

from ..catalog.models import Category, Product
from ..extensions import db
from . import cards, keyword, ranking
from .embeddings import query_vector, vector_index
from .statements import built

Sort = Literal["relevance", "price_asc", "price_desc", "newest", "name"]
SORTS: dict[str, str] = {
    "relevance": "Best match",
    "price_asc": "Price: low to high",
    "price_desc": "Price: high to low",
    "newest": "Newest",
    "name": "Name",
}
_ORDER: dict[str, tuple[Any, ...]] = {
    "price_asc": (Product.price.asc(),),
    "price_desc": (Product.price.desc(),),
    "newest": (Product.created_at.desc(),),
    "name": (Product.name.asc(),),
}

RRF_K = 60  # the constant of reciprocal rank fusion (Cormack et al.); damps rank gaps
KEYWORD_POOL = 200  # full-text hits fused with the vectors; later pages follow bm25
VECTOR_POOL = 50
FILTERED_DEPTH = 10
SIMILARITY_WINDOW = 0.25  # cosine; measured on the demo catalog with the local MiniLM


@dataclass(frozen=True)
class SearchFilters:
    q: str = ""
    category: Category | None = None
    min_price: Decimal | None = None
    max_price: Decimal | None = None
    sort: Sort = "relevance"


class RankedPage(Pagination):
    """A page whose items were ranked here, with Flask-SQLAlchemy's pager interface."""

    def _query_items(self) -> list[Any]:
        return list(self._query_args["items"])

    def _query_count(self) -> int:
        return int(self._query_args["total"])


Shape = frozenset[str]  # the filters a search sets: what its statements' structure depends on


def _filter_values(filters: SearchFilters) -> dict[str, Any]:
    """The filters set, by the name of their bind parameter (`_bound_filters`)."""
    values = {
        "category_id": filters.category.id if filters.category is not None else None,
        "min_price": filters.min_price,
        "max_price": filters.max_price,
    }
    return {name: value for name, value in values.items() if value is not None}


def _bound_filters(query: Select[Any], shape: Shape) -> Select[Any]:
    """`query` within the filters of `shape`, as bind parameters of their names."""
    if "category_id" in shape:
        query = query.where(Product.category_id == bindparam("category_id"))
    if "min_price" in shape:
        query = query.where(Product.price >= bindparam("min_price"))
    if "max_price" in shape:
        query = query.where(Product.price <= bindparam("max_price"))
    return query


def _filtered(query: Select[Any], filters: SearchFilters) -> Select[Any]:
    """`query` within `filters`, their values in the statement (for `db.paginate`)."""
    values = _filter_values(filters)
    return _bound_filters(query, frozenset(values)).params(values)


def _matching(shape: Shape) -> Select[Any] | None:
    """The ids of the products within the filters of `shape`; None without filters:
    matches are then ranked in the full-text index alone."""
    return _bound_filters(select(Product.id), shape) if shape else None


def _counted(shape: Shape) -> Select[Any] | None:
    """A count of the products within the filters of `shape`; None without filters:
    matches are then counted in the full-text index alone."""
    return _bound_filters(select(func.count(Product.id)), shape) if shape else None


def _count(shape: Shape, params: dict[str, Any]) -> int:
    """How many products within the filters of `shape` match the words in `params`."""
    statement = built(
        ("count", shape), lambda: keyword.counting(_counted(shape), keyword.Words.bound())
    )
    return int(db.session.scalar(statement, params) or 0)


def _keyword_ranked(shape: Shape) -> Select[Any]:
    """Full-text matches within the filters of `shape`, best first, from `offset`, at
    most `limit`."""
    return built(
        ("keyword_ranked", shape),
        lambda: (
            keyword.ranked(_matching(shape), keyword.Words.bound())
            .limit(bindparam("limit"))
            .offset(bindparam("offset"))
        ),
    )


def _search_params(filters: SearchFilters) -> tuple[Shape, dict[str, Any]]:
    """A search's shape (the filters set) and its parameters: the filters' values
    and the query's words as the database matches them."""
    values = _filter_values(filters)
    return frozenset(values), {**keyword.Words.params(filters.q), **values}


def _similar(filters: SearchFilters) -> list[int]:
    """Products near the query in meaning and within the filters, nearest first."""
    index = vector_index()
    index.refresh()
    if not len(index):
        return []  # nothing embedded yet: don't pay for the query's vector
    vector = query_vector(filters.q)
    if vector is None:
        return []
    values = _filter_values(filters)
    depth = VECTOR_POOL * FILTERED_DEPTH if values else VECTOR_POOL
    ranked = _close_to_the_best(
        index.nearest(vector, depth, current_app.config["SHOPAI_SEARCH_MIN_SIMILARITY"])
    )
    if not ranked or not values:
        return ranked
    # Filters apply after the vector scan, hence the deeper look: the nearest products
    # are often in other categories or prices.
    shape = frozenset(values)
    within = built(
        ("within", shape),
        lambda: _bound_filters(select(Product.id), shape).where(
            Product.id.in_(bindparam("ids", expanding=True))
        ),
    )
    allowed = set(db.session.scalars(within, {**values, "ids": ranked}))
    return [pid for pid in ranked if pid in allowed][:VECTOR_POOL]


def _close_to_the_best(hits: list[tuple[int, float]]) -> list[int]:
    """Hits within SIMILARITY_WINDOW of the best one. The absolute floor keeps junk out
    of a query that matches nothing well; this keeps a query that matches some products
    very well ("laptop for college": student laptops at 0.6) from trailing off into
    everything that is vaguely related (laptop sleeves at 0.35)."""
    if not hits:
        return []
    cutoff = hits[0][1] - SIMILARITY_WINDOW
    return [pid for pid, score in hits if score >= cutoff]


def fuse(keyword_ids: Sequence[int], vector_ids: Sequence[int], first: set[int]) -> list[int]:
    """Reciprocal rank fusion: each list adds 1 / (RRF_K + rank); ids in `first` lead."""
    scores: dict[int, float] = {}
    for ranked in (keyword_ids, vector_ids):
        for rank, product_id in enumerate(ranked, start=1):
            scores[product_id] = scores.get(product_id, 0.0) + 1.0 / (RRF_K + rank)
    return sorted(scores, key=lambda pid: (pid not in first, -scores[pid]))


def _products_in_order(ids: Sequence[int], *, as_cards: bool = False) -> list[Any]:
    if as_cards:
        return cards.cards_in_order(ids)
    if not ids:
        return []
    found = db.session.scalars(
        select(Product).where(Product.id.in_(ids)).options(joinedload(Product.images))
    )
    by_id = {p.id: p for p in found.unique()}
    return [by_id[pid] for pid in ids if pid in by_id]


def _first_tier_page(
    matching: Select[Any] | None, counted: Select[Any] | None, *, as_cards: bool
) -> Select[Any]:
    """A slice (`limit`, `offset`) of the first tier's ranked matches (see `ranking`)
    as products with their categories and images (or as `cards`), the number of
    matches in the last column; for `keyword.Words.params` of a query."""
    words = keyword.Words.bound()
    names = keyword.tier(matching, words, names=True)
    ranked = ranking.ranked_window(names, windowed=matching is None)
    hits = ranked.limit(bindparam("limit")).offset(bindparam("offset")).subquery()
    # correlate(None): the count runs on its own, never per row of the products joined.
    total = keyword.counting(counted, words).correlate(None).scalar_subquery()
    if as_cards:
        statement = cards.select_cards(total)
    else:
        statement = select(Product, total).options(joinedload(Product.images))
    return statement.join(hits, hits.c.id == Product.id).order_by(hits.c.score, hits.c.id)


def _ranked_page(filters: SearchFilters, page: int, per_page: int, *, as_cards: bool) -> RankedPage:
    """A page of full-text matches in the order of `ranking`, and how many match.

    Most pages lie among the first tier's ranked matches (products named by the query):
    one statement then ranks that slice, loads its products, categories and images, and
    counts the matches. Asked one by one, those cost the page more in SQLAlchemy's and
    the driver's overhead than in the database's own work. A page reaching past them
    is assembled by `ranking.page_ids`."""
    offset = (page - 1) * per_page
    shape, params = _search_params(filters)
    statement = built(
        ("first_tier_page", ranking.WINDOW, as_cards, shape),
        lambda: _first_tier_page(_matching(shape), _counted(shape), as_cards=as_cards),
    )
    result = db.session.execute(statement, {**params, "limit": per_page, "offset": offset})
    rows = result.all() if as_cards else result.unique().all()
    found = int(rows[0][-1]) if rows else _count(shape, params)
    if len(rows) == per_page or offset + len(rows) >= found:
        items = cards.from_rows(rows) if as_cards else [row[0] for row in rows]
    else:  # the page reaches past the first tier's window
        matching = None if not shape else _filtered(select(Product.id), filters)
        counted = None if not shape else _filtered(select(func.count(Product.id)), filters)
        ids = ranking.page_ids(matching, counted, filters.q, found, offset, per_page)
        items = _products_in_order(ids, as_cards=as_cards)
    return RankedPage(page=page, per_page=per_page, items=items, total=found)


def _listing(filters: SearchFilters) -> Select[Any]:
    """Every product within the filters, in the order of `filters.sort` (by name for
    relevance: without words there is nothing to be relevant to)."""
    return _filtered(select(Product), filters).order_by(
        *_ORDER.get(filters.sort, _ORDER["name"]), Product.id
    )


def _fused_block(
    shape: Shape, params: dict[str, Any], similar: list[int]
) -> tuple[list[int], list[int]]:
    """The first KEYWORD_POOL full-text hits of a search (`_search_params`), and those
    hits fused with the vector hits `similar`, best first."""
    pool = {**params, "limit": KEYWORD_POOL, "offset": 0}
    keyword_ids = list(db.session.scalars(_keyword_ranked(shape), pool))
    first = keyword.names_matching(params, keyword_ids)
    return keyword_ids, fuse(keyword_ids, similar, first)


def best_ids(filters: SearchFilters, limit: int) -> list[int]:
    """The ids of the first `limit` products `search_products` ranks by relevance for
    `filters`, in its order: all a caller that wants only the best few needs (the
    assistant, whose model waits for them before it can write a word). Where vectors
    take part, nothing is counted or loaded; full-text alone is ranked by the search
    page's own statement, which counts as it ranks."""
    if not keyword.has_terms(filters.q):
        listed = _listing(filters).with_only_columns(Product.id).limit(limit)
        return list(db.session.scalars(listed))
    similar = _similar(filters)
    if not similar:  # full-text alone, ranked as the search page ranks it
        return [
            product.id for product in search_products(filters, 1, limit, by_meaning=False).items
        ]
    return _fused_block(*_search_params(filters), similar)[1][:limit]


def search_products(
    filters: SearchFilters,
    page: int,
    per_page: int,
    *,
    by_meaning: bool = True,
    as_cards: bool = False,
) -> Pagination:
    """One page of products matching `filters`, ranked as described above; with
    `by_meaning=False`, full-text alone (no query vector is computed). With `as_cards`,
    pages ranked here hold `cards.ProductCard`s, read as rows, for the results page
    (sorted pages and listings still hold products: a card template reads either)."""
    if not keyword.has_terms(filters.q):
        return db.paginate(
            _listing(filters), page=page, per_page=per_page, error_out=False, count=True
        )

    similar = _similar(filters) if by_meaning else []
    if filters.sort != "relevance":
        found = _filtered(select(Product), filters).where(
            or_(keyword.matches(filters.q), Product.id.in_(similar))
        )
        ordered = found.order_by(*_ORDER[filters.sort], Product.id)
        return db.paginate(ordered, page=page, per_page=per_page, error_out=False, count=True)

    offset = (page - 1) * per_page
    if not similar:  # full-text alone: only this page is ranked and fetched
        return _ranked_page(filters, page, per_page, as_cards=as_cards)

    shape, params = _search_params(filters)
    total = _count(shape, params)

    # The first KEYWORD_POOL full-text hits and the vector hits are fused once into a
    # block; later pages continue in bm25 order after it. (Fusing a pool that grew
    # with the page number reordered earlier pages: products shown twice or never.)
    keyword_ids, block = _fused_block(shape, params, similar)
    if total > len(keyword_ids):  # some matches lie beyond the pool: count the union
        also = len(set(similar) - keyword.matching_ids(filters.q))
    else:
        also = len(set(similar) - set(keyword_ids))
    ids = block[offset : offset + per_page]
    if len(ids) < per_page and total > len(keyword_ids):
        ids += _after_block(shape, params, block, len(keyword_ids), offset, per_page - len(ids))
    items = _products_in_order(ids, as_cards=as_cards)
    return RankedPage(page=page, per_page=per_page, items=items, total=total + also)


def _after_block(
    shape: Shape,
    params: dict[str, Any],
    block: list[int],
    pooled: int,
    offset: int,
    count: int,
) -> list[int]:
    """Full-text hits past the fused block (whose first `pooled` came from full-text), in
    bm25 order, without those already in the block."""
    start = max(0, offset - len(block))
    in_block = set(block)
    # Vector hits that bm25 ranks past the pool sit in the block already: skipping them
    # shifts the rest by at most their number, so that many more are read.
    margin = len(block) - pooled
    window = {**params, "offset": pooled, "limit": start + count + margin}
    rest = db.session.scalars(_keyword_ranked(shape), window)
    return [pid for pid in rest if pid not in in_block][start : start + count]
