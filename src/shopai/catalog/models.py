"""Catalog tables: the truth every AI feature is checked against."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..db_types import Money, UTCDateTime, utcnow
from ..extensions import Model

if TYPE_CHECKING:
    from ..images.models import ProductImage


# The largest price NUMERIC(10, 2) holds.
MAX_PRICE = Decimal("99999999.99")


class Category(Model):
    __tablename__ = "category"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80))
    slug: Mapped[str] = mapped_column(String(100), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")

    products: Mapped[list[Product]] = relationship(back_populates="category")

    def __repr__(self) -> str:
        return f"<Category {self.id} {self.name!r}>"


# Names differing only in case ("Phones" / "phones") are the same category.
Index("uq_category_name_lower", func.lower(Category.name), unique=True)


class Product(Model):
    __tablename__ = "product"
    __table_args__ = (
        CheckConstraint("price >= 0", name="price_not_negative"),
        Index("ix_product_category_price", "category_id", "price"),
        Index("ix_product_created_at", "created_at"),
        Index("ix_product_price", "price"),
        Index("ix_product_name", "name"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(220), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    price: Mapped[Decimal] = mapped_column(Money)
    category_id: Mapped[int] = mapped_column(ForeignKey("category.id", ondelete="RESTRICT"))
    featured: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    category: Mapped[Category] = relationship(back_populates="products", lazy="joined")
    images: Mapped[list[ProductImage]] = relationship(
        back_populates="product",
        cascade="all, delete-orphan",
        order_by="ProductImage.id",
        lazy="selectin",
    )

    @property
    def image(self) -> ProductImage | None:
        """The image shown for the product: the chosen one (candidates wait to be picked)."""
        return next((image for image in reversed(self.images) if image.chosen), None)

    def __repr__(self) -> str:
        return f"<Product {self.id} {self.name!r}>"
