"""Product search: words and meaning fused, with category and price filters.

`search_products` is what every feature calls (the search page, the API, and the
AI features after them). It ranks by reciprocal rank fusion of the full-text
ranking (`keyword`) and the nearest vectors (`vectors`), so "laptop for college"
finds laptops although no product says "college", while a product whose name holds
every word of the query still comes first. Vectors below a similarity floor are
dropped, so a query that matches nothing well says so instead of listing the
nearest junk; without vectors (none computed yet, backend down) search is full-text
alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from flask import current_app
from flask_sqlalchemy.pagination import Pagination
from sqlalchemy import Select, func, or_, select

from ..catalog.models import Category, Product
from ..extensions import db
from . import keyword
from .embeddings import query_vector, vector_index

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


def _filtered(query: Select[Any], filters: SearchFilters) -> Select[Any]:
    if filters.category is not None:
        query = query.where(Product.category_id == filters.category.id)
    if filters.min_price is not None:
        query = query.where(Product.price >= filters.min_price)
    if filters.max_price is not None:
        query = query.where(Product.price <= filters.max_price)
    return query


def _unfiltered(filters: SearchFilters) -> bool:
    return filters == SearchFilters(q=filters.q, sort=filters.sort)


def _similar(filters: SearchFilters) -> list[int]:
    """Products near the query in meaning and within the filters, nearest first."""
    index = vector_index()
    index.refresh()
    if not len(index):
        return []  # nothing embedded yet: don't pay for the query's vector
    vector = query_vector(filters.q)
    if vector is None:
        return []
    depth = VECTOR_POOL if _unfiltered(filters) else VECTOR_POOL * FILTERED_DEPTH
    ranked = _close_to_the_best(
        index.nearest(vector, depth, current_app.config["SHOPAI_SEARCH_MIN_SIMILARITY"])
    )
    if _unfiltered(filters):
        return ranked
    # Filters apply after the vector scan, hence the deeper look: the nearest products
    # are often in other categories or prices.
    allowed = set(
        db.session.scalars(_filtered(select(Product.id), filters).where(Product.id.in_(ranked)))
    )
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
    for ranking in (keyword_ids, vector_ids):
        for rank, product_id in enumerate(ranking, start=1):
            scores[product_id] = scores.get(product_id, 0.0) + 1.0 / (RRF_K + rank)
    return sorted(scores, key=lambda pid: (pid not in first, -scores[pid]))


def _products_in_order(ids: Sequence[int]) -> list[Product]:
    if not ids:
        return []
    by_id = {p.id: p for p in db.session.scalars(select(Product).where(Product.id.in_(ids)))}
    return [by_id[pid] for pid in ids if pid in by_id]


def search_products(
    filters: SearchFilters, page: int, per_page: int, *, by_meaning: bool = True
) -> Pagination:
    """One page of products matching `filters`, ranked as described above; with
    `by_meaning=False`, full-text alone (no query vector is computed)."""
    if not keyword.has_terms(filters.q):
        listing = _filtered(select(Product), filters).order_by(
            *_ORDER.get(filters.sort, _ORDER["name"]), Product.id
        )
        return db.paginate(listing, page=page, per_page=per_page, error_out=False, count=True)

    similar = _similar(filters) if by_meaning else []
    if filters.sort != "relevance":
        matching = _filtered(select(Product), filters).where(
            or_(keyword.matches(filters.q), Product.id.in_(similar))
        )
        ordered = matching.order_by(*_ORDER[filters.sort], Product.id)
        return db.paginate(ordered, page=page, per_page=per_page, error_out=False, count=True)

    offset = (page - 1) * per_page
    matching = _filtered(select(Product.id), filters)
    counted = None if _unfiltered(filters) else _filtered(select(func.count(Product.id)), filters)
    total = keyword.count(counted, filters.q)
    if not similar:  # full-text alone: bm25 order, and only this page is fetched
        page_ids = list(
            db.session.scalars(keyword.ranked(matching, filters.q).limit(per_page).offset(offset))
        )
        items = _products_in_order(page_ids)
        return RankedPage(page=page, per_page=per_page, items=items, total=total)

    # The first KEYWORD_POOL full-text hits and the vector hits are fused once into a
    # block; later pages continue in bm25 order after it. (Fusing a pool that grew
    # with the page number reordered earlier pages: products shown twice or never.)
    keyword_ids = list(db.session.scalars(keyword.ranked(matching, filters.q).limit(KEYWORD_POOL)))
    block = fuse(keyword_ids, similar, keyword.names_matching(filters.q, keyword_ids))
    if total > len(keyword_ids):  # some matches lie beyond the pool: count the union
        also = len(set(similar) - keyword.matching_ids(filters.q))
    else:
        also = len(set(similar) - set(keyword_ids))
    ids = block[offset : offset + per_page]
    if len(ids) < per_page and total > len(keyword_ids):
        ids += _after_block(filters, matching, block, len(keyword_ids), offset, per_page - len(ids))
    return RankedPage(
        page=page, per_page=per_page, items=_products_in_order(ids), total=total + also
    )


def _after_block(
    filters: SearchFilters,
    matching: Select[Any],
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
    rest = db.session.scalars(
        keyword.ranked(matching, filters.q).offset(pooled).limit(start + count + margin)
    )
    return [pid for pid in rest if pid not in in_block][start : start + count]
