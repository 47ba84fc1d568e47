"""The vector index: nearest products to a query vector, behind one small interface.

The embedded default keeps every product vector of the current model in one numpy
matrix per process (10,000 x 384 float32 is 15 MB, a full scan well under a
millisecond per thousand products), reloaded when the stored vectors change. On
PostgreSQL with pgvector, `search.pgvector` stands behind the same `nearest` call.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from sqlalchemy import func, select

from ..extensions import db
from .models import ProductEmbedding


class VectorIndex(Protocol):
    """The numpy index here, or pgvector's (`search.pgvector`) on PostgreSQL with it."""

    def nearest(self, vector: np.ndarray, limit: int, floor: float) -> list[tuple[int, float]]:
        """Up to `limit` (product id, cosine similarity) pairs with similarity >= `floor`,
        most similar first."""
        ...

    def __len__(self) -> int:
        """How many vectors it holds (as of the last `refresh`)."""
        ...

    def refresh(self) -> None:
        """Catch up with vectors written elsewhere (rate-limited)."""

    def invalidate(self) -> None:
        """The next `refresh` looks again (vectors were just written)."""


@dataclass(frozen=True)
class _Snapshot:
    version: tuple[int, str]
    ids: np.ndarray
    matrix: np.ndarray  # rows L2-normalised


def decode_vector(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype="<f4")


def encode_vector(vector: list[float] | np.ndarray) -> bytes:
    return np.asarray(vector, dtype="<f4").tobytes()


class NumpyVectorIndex:
    """In-memory index of one embeddings model's vectors, for one process.

    Whether the stored vectors changed is asked of the database (a count and the
    newest timestamp, on an index) at most every `recheck_seconds`, so vectors
    written by a worker process show up without a restart.
    """

    def __init__(
        self,
        model: str,
        recheck_seconds: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.model = model
        self.recheck_seconds = recheck_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._snapshot: _Snapshot | None = None
        self._checked_at = -float("inf")

    def __len__(self) -> int:
        return 0 if self._snapshot is None else len(self._snapshot.ids)

    def invalidate(self) -> None:
        self._checked_at = -float("inf")

    def refresh(self) -> None:
        """Reload if the stored vectors changed since the last load."""
        with self._lock:
            now = self._clock()
            if now - self._checked_at < self.recheck_seconds:
                return
            self._checked_at = now
            count, newest = db.session.execute(
                select(func.count(), func.max(ProductEmbedding.updated_at)).where(
                    ProductEmbedding.model == self.model
                )
            ).one()
            version = (int(count), str(newest))
            if self._snapshot is None or self._snapshot.version != version:
                self._snapshot = self._load(version)

    def _load(self, version: tuple[int, str]) -> _Snapshot:
        rows = db.session.execute(
            select(ProductEmbedding.product_id, ProductEmbedding.vector).where(
                ProductEmbedding.model == self.model
            )
        ).all()
        if not rows:
            return _Snapshot(version, np.empty(0, dtype=np.int64), np.empty((0, 0), "f4"))
        ids = np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
        matrix = np.vstack([decode_vector(row[1]) for row in rows])
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        matrix = matrix / np.where(norms == 0, 1, norms)
        return _Snapshot(version, ids, matrix.astype("f4"))

    def nearest(self, vector: np.ndarray, limit: int, floor: float) -> list[tuple[int, float]]:
        self.refresh()
        snapshot = self._snapshot
        if snapshot is None or not len(snapshot.ids) or limit <= 0:
            return []
        query = np.asarray(vector, dtype="f4")
        if query.shape[0] != snapshot.matrix.shape[1]:
            return []  # vectors of another size: the model changed, rebuild pending
        norm = float(np.linalg.norm(query))
        if norm == 0:
            return []
        scores = snapshot.matrix @ (query / norm)
        count = min(limit, len(scores))
        top = np.argpartition(-scores, count - 1)[:count]
        top = top[np.argsort(-scores[top])]
        return [(int(snapshot.ids[i]), float(scores[i])) for i in top if scores[i] >= floor]
