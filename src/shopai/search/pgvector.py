"""pgvector behind the same `nearest` as the numpy index, when PostgreSQL has it.

Migration 0011 adds `product_embedding.embedding` (pgvector's `vector`) when the
server offers the extension; without it, PostgreSQL keeps the numpy index like
SQLite. The float32 blob in `vector` stays the record (the numpy index reads it,
and it moves between databases); `embedding` is its copy that PostgreSQL can search,
written after every flush that writes a blob, as `pg_index` writes the full-text
documents.

The scan is exact (cosine distance over the current model's rows), so both indexes
return the same products in the same order. The column has no fixed dimension (the
model decides it), which an approximate HNSW index would need: at catalog sizes an
exact scan costs milliseconds.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
from sqlalchemy import Connection, event, text
from sqlalchemy.dialects.postgresql.base import ischema_names
from sqlalchemy.orm import Session, UOWTransaction
from sqlalchemy.types import UserDefinedType

from ..extensions import db
from .models import ProductEmbedding


class Vector(UserDefinedType[str]):
    """pgvector's type, by name: enough for SQLAlchemy to reflect the column (Alembic's
    comparison of models and database does) without warning that it is unknown."""

    cache_ok = True

    def get_col_spec(self, **_kw: Any) -> str:
        return "vector"


ischema_names.setdefault("vector", Vector)
_AVAILABLE = "shopai.pgvector"
_NEAREST = text(
    """SELECT product_id, 1 - (embedding <=> CAST(:query AS vector)) AS similarity
    FROM product_embedding
    WHERE model = :model AND dimensions = :dimensions AND embedding IS NOT NULL
    ORDER BY embedding <=> CAST(:query AS vector), product_id
    LIMIT :limit"""
)
_COUNT = text(
    "SELECT count(*) FROM product_embedding WHERE model = :model AND embedding IS NOT NULL"
)
_WRITE = text(
    "UPDATE product_embedding SET embedding = CAST(:embedding AS vector) WHERE product_id = :id"
)


def available(connection: Connection) -> bool:
    """Whether this database has the `embedding` column (remembered per connection)."""
    if connection.dialect.name != "postgresql":
        return False
    info = connection.info
    if _AVAILABLE not in info:
        info[_AVAILABLE] = bool(
            connection.scalar(
                text(
                    "SELECT count(*) FROM information_schema.columns WHERE table_schema = "
                    "current_schema() AND table_name = 'product_embedding' "
                    "AND column_name = 'embedding'"
                )
            )
        )
    return bool(info[_AVAILABLE])


def literal(vector: Any) -> str:
    """pgvector's text form; float32 values print exactly as repr of their double."""
    return "[" + ",".join(repr(float(x)) for x in np.asarray(vector, dtype="<f4")) + "]"


def from_blob(blob: bytes) -> str:
    return literal(np.frombuffer(blob, dtype="<f4"))


class PgVectorIndex:
    """`VectorIndex` over `product_embedding.embedding`: the database does the scan.

    Its size (whether any vector exists, which spares the query's embedding) is asked
    at most every `recheck_seconds`, as the numpy index asks whether to reload."""

    def __init__(
        self,
        model: str,
        recheck_seconds: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.model = model
        self.recheck_seconds = recheck_seconds
        self._clock = clock
        self._count = 0
        self._checked_at = -float("inf")

    def __len__(self) -> int:
        return self._count

    def invalidate(self) -> None:
        self._checked_at = -float("inf")

    def refresh(self) -> None:
        now = self._clock()
        if now - self._checked_at < self.recheck_seconds:
            return
        self._checked_at = now
        self._count = int(db.session.scalar(_COUNT, {"model": self.model}) or 0)

    def nearest(self, vector: np.ndarray, limit: int, floor: float) -> list[tuple[int, float]]:
        query = np.asarray(vector, dtype="f4")
        if limit <= 0 or query.ndim != 1 or not float(np.linalg.norm(query)):
            return []
        rows = db.session.execute(
            _NEAREST,
            {
                "query": literal(query),
                "model": self.model,
                "dimensions": int(query.shape[0]),
                "limit": limit,
            },
        )
        # A zero vector stored has no direction: its similarity is NaN, never >= floor.
        return [(int(pid), float(score)) for pid, score in rows if score >= floor]


def _after_flush(session: Session, _context: UOWTransaction) -> None:
    connection = session.connection()
    if not available(connection):
        return
    written = [
        {"id": obj.product_id, "embedding": from_blob(obj.vector)}
        for obj in (*session.new, *session.dirty)
        if isinstance(obj, ProductEmbedding)
        and obj not in session.deleted
        and (obj in session.new or session.is_modified(obj, include_collections=False))
    ]
    if written:
        connection.execute(_WRITE, written)


def install() -> None:
    """Keep `embedding` in step with every blob written (a no-op without pgvector)."""
    if not event.contains(Session, "after_flush", _after_flush):
        event.listen(Session, "after_flush", _after_flush)
