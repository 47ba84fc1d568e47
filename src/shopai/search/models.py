"""Product vectors for search by meaning."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from ..db_types import UTCDateTime, utcnow
from ..extensions import Model


class ProductEmbedding(Model):
    """A product's vector, with what it was computed from: the model and a hash of the
    text. Either differing from today's makes the vector stale (edited product, other
    embeddings model), so staleness is a comparison, never a flag to keep in sync."""

    __tablename__ = "product_embedding"
    __table_args__ = (Index("ix_product_embedding_model_updated", "model", "updated_at"),)

    product_id: Mapped[int] = mapped_column(
        ForeignKey("product.id", ondelete="CASCADE"), primary_key=True
    )
    model: Mapped[str] = mapped_column(String(128))
    text_hash: Mapped[str] = mapped_column(String(64))
    dimensions: Mapped[int]
    vector: Mapped[bytes] = mapped_column(LargeBinary)  # float32, little-endian
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
