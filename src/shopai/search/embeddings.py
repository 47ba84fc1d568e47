"""Product vectors: what text they are computed from, when they are stale, recomputing them.

A vector remembers its model and a hash of its text, so "stale" is a comparison
with today's product and today's model: editing a product, renaming its category
or switching the embeddings model all make vectors stale without any flag to keep
in step. Recomputing is idempotent (an upsert per product) and holds no database
transaction open while the model works.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Iterator

import numpy as np
from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ..ai.errors import AIError
from ..ai_service import ai_client
from ..cache import Cache, MemoryCache, shared_cache
from ..cache import get as cache_get
from ..cache import put as cache_put
from ..catalog.models import Category, Product
from ..extensions import db
from . import pgvector
from .models import ProductEmbedding
from .pgvector import PgVectorIndex
from .vectors import NumpyVectorIndex, VectorIndex, encode_vector

log = logging.getLogger(__name__)

BATCH_SIZE = 64
# Measured on the demo catalog with the local MiniLM: the name and category alone miss
# what a product is for ("listen to music on the train" ranked speakers over
# headphones); the opening of the description fixes that, while the whole description
# adds nothing and makes a rebuild five times slower.
DESCRIPTION_CHARS = 100
QUERY_CACHE_SIZE = 1024  # in memory; Redis bounds its own
QUERY_TTL_SECONDS = 7 * 24 * 3600.0  # keys name the model, so only age retires them
VECTOR_INDEX_KEY = "shopai.search.vectors"
Progress = Callable[[int], None]  # called with how many products a batch settled


def product_text(name: str, category: str, description: str) -> str:
    """What a product's vector is computed from: what it is and what it is for."""
    return f"{name}\n{category}\n{description[:DESCRIPTION_CHARS]}"


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def embeddings_model() -> str:
    return ai_client().settings.feature("embeddings").model


def vector_index() -> VectorIndex:
    """This process's index of the current model's vectors (one per app), chosen once by
    the database: pgvector where PostgreSQL has it, else numpy in memory."""
    extensions = current_app.extensions
    index = extensions.get(VECTOR_INDEX_KEY)
    if index is None:
        kind = PgVectorIndex if pgvector.available(db.session.connection()) else NumpyVectorIndex
        index = extensions.setdefault(
            VECTOR_INDEX_KEY,
            kind(embeddings_model(), current_app.config["SHOPAI_SEARCH_VECTOR_RECHECK_SECONDS"]),
        )
    return index


def _texts(product_ids: Iterable[int] | None) -> dict[int, str]:
    query = select(Product.id, Product.name, Category.name, Product.description).join(
        Category, Category.id == Product.category_id
    )
    if product_ids is not None:
        query = query.where(Product.id.in_(list(product_ids)))
    return {row[0]: product_text(row[1], row[2], row[3]) for row in db.session.execute(query)}


def stale_texts(product_ids: Iterable[int] | None = None) -> dict[int, str]:
    """The texts of products whose vector is missing, from another model, or from
    other text, by product id."""
    model = embeddings_model()
    texts = _texts(product_ids)
    rows = db.session.execute(
        select(ProductEmbedding.product_id, ProductEmbedding.text_hash).where(
            ProductEmbedding.model == model, ProductEmbedding.product_id.in_(list(texts))
        )
    )
    stored = {product_id: digest for product_id, digest in rows}
    return {pid: text for pid, text in texts.items() if stored.get(pid) != text_hash(text)}


def stale_product_ids(product_ids: Iterable[int] | None = None) -> list[int]:
    return sorted(stale_texts(product_ids))


def _chunks(items: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def refresh_embeddings(
    product_ids: Iterable[int] | None = None,
    *,
    who: str = "embeddings",
    progress: Progress | None = None,
) -> int:
    """Recompute the stale vectors among `product_ids` (all products if None); returns
    how many were written. Raises `AIError` when the embeddings backend fails."""
    model = embeddings_model()
    written = 0
    for batch in _chunks(stale_product_ids(product_ids), BATCH_SIZE):
        texts = _texts(batch)
        db.session.commit()  # no transaction stays open while the model works
        ids = list(texts)
        vectors = ai_client().embed([texts[i] for i in ids], who=who) if ids else []
        written += _store(model, ids, [texts[i] for i in ids], vectors)
        if progress is not None:
            progress(len(batch))
    if written:
        vector_index().invalidate()
    return written


def _store(model: str, ids: list[int], texts: list[str], vectors: list[list[float]]) -> int:
    """Upsert the vectors whose product still has the text they were computed from.

    A product edited while the model worked has a newer job queued for its new text;
    writing this older vector would mark it fresh and lose that edit's vector, so it
    is skipped (as is a product deleted meanwhile). Two writers of a product's first
    vector race on its primary key: the loser re-reads and updates.
    """
    current = {pid: text_hash(text) for pid, text in _texts(ids).items()}
    written = [
        (pid, text, vector)
        for pid, text, vector in zip(ids, texts, vectors, strict=True)
        if current.get(pid) == text_hash(text)
    ]
    for attempt in range(2):
        rows = {
            row.product_id: row
            for row in db.session.scalars(
                select(ProductEmbedding).where(ProductEmbedding.product_id.in_(ids))
            )
        }
        for product_id, text, vector in written:
            row = rows.get(product_id) or ProductEmbedding(product_id=product_id)
            row.model = model
            row.text_hash = text_hash(text)
            row.dimensions = len(vector)
            row.vector = encode_vector(vector)
            db.session.add(row)
        try:
            db.session.commit()
        except IntegrityError:
            db.session.rollback()
            if attempt:
                raise
        else:
            break
    return len(written)


class QueryVectors:
    """Vectors of shoppers' queries, remembered: popular searches are embedded once
    (once between all processes when the shared cache is Redis: with an API backend
    each embedding is a paid call), and a failing backend costs the search nothing but
    the vector. Without a cache given, one of its own in this process (benchmarks)."""

    def __init__(self, cache: Cache | None = None) -> None:
        self._cache: Cache = cache if cache is not None else MemoryCache(QUERY_CACHE_SIZE)

    def get(self, q: str, budget: float) -> np.ndarray | None:
        normalized = " ".join(q.casefold().split())
        key = hashlib.sha256(f"{embeddings_model()}\0{normalized}".encode()).hexdigest()
        kept = cache_get(self._cache, key)
        if kept is not None and len(kept) % 4 == 0:
            return np.frombuffer(kept, dtype="<f4")
        try:
            vector = np.asarray(ai_client().embed([q], who="search", budget=budget)[0], "<f4")
        except AIError as exc:
            log.info("search without vectors: %s", exc)
            return None
        cache_put(self._cache, key, vector.tobytes(), QUERY_TTL_SECONDS)
        return vector


QUERY_VECTORS_KEY = "shopai.search.query_vectors"


def query_vector(q: str) -> np.ndarray | None:
    """The vector of a shopper's query, or None when embeddings are unavailable."""
    cache = current_app.extensions.get(QUERY_VECTORS_KEY)
    if cache is None:
        cache = current_app.extensions.setdefault(
            QUERY_VECTORS_KEY, QueryVectors(shared_cache("query-vectors", QUERY_CACHE_SIZE))
        )
    return cache.get(q, current_app.config["SHOPAI_SEARCH_EMBED_TIMEOUT"])
