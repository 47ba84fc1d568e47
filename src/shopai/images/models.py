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
    from ..jobs.models import Job

SOURCES = ("upload", "ai", "renderer")
PROMPT_MAX = 1000


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
    # Which generation made it: a re-run of that job finds its images by this.
    request_id: Mapped[int | None] = mapped_column(
        ForeignKey("image_request.id", ondelete="SET NULL"), index=True
    )
    chosen: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    product: Mapped[Product] = relationship(back_populates="images")

    @property
    def ai_generated(self) -> bool:
        """Drawn by an image model (the offline renderer's cards are not)."""
        return self.source == "ai"

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


class ImageRequest(Model):
    """An admin (or the demo seeding) asked for generated images of a product; the job
    does the drawing, and its row says how far it got."""

    __tablename__ = "image_request"

    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(
        ForeignKey("product.id", ondelete="CASCADE"), index=True
    )
    job_id: Mapped[int | None] = mapped_column(ForeignKey("job.id", ondelete="SET NULL"))
    prompt: Mapped[str] = mapped_column(Text)
    n: Mapped[int] = mapped_column(default=1)
    # Show the first image at once (a product with none yet), or wait for the admin's pick.
    choose_first: Mapped[bool] = mapped_column(default=False)
    requested_by: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    job: Mapped[Job | None] = relationship()


class CategoryImagePrompt(Model):
    """The prompt template of a category's generated images, set by an admin; without
    one, `generation.DEFAULT_TEMPLATE` is used."""

    __tablename__ = "category_image_prompt"

    category_id: Mapped[int] = mapped_column(
        ForeignKey("category.id", ondelete="CASCADE"), primary_key=True
    )
    template: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
