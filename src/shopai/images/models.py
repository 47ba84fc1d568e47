"""Product images, named by the hash of their content so no two products can collide."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..db_types import UTCDateTime, utcnow
from ..extensions import Model

if TYPE_CHECKING:
    from ..catalog.models import Product

SOURCES = ("upload", "ai", "renderer")


class ProductImage(Model):
    __tablename__ = "product_image"

    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(
        ForeignKey("product.id", ondelete="CASCADE"), index=True
    )
    content_hash: Mapped[str] = mapped_column(String(64), index=True)
    width: Mapped[int]
    height: Mapped[int]
    source: Mapped[str] = mapped_column(String(16), default="upload")
    # Provenance of generated images: which backend and model drew it, from what prompt.
    backend: Mapped[str | None] = mapped_column(String(64))
    model: Mapped[str | None] = mapped_column(String(128))
    prompt: Mapped[str | None] = mapped_column(Text)
    seed: Mapped[int | None]
    chosen: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    product: Mapped[Product] = relationship(back_populates="images")

    @property
    def path(self) -> str:
        return image_path(self.content_hash)

    @property
    def thumbnail_path(self) -> str:
        return image_path(self.content_hash, thumbnail=True)


def image_path(content_hash: str, *, thumbnail: bool = False) -> str:
    """Relative path of a stored file; two-level fan-out keeps directories small."""
    suffix = "-thumb" if thumbnail else ""
    return f"{content_hash[:2]}/{content_hash}{suffix}.webp"
