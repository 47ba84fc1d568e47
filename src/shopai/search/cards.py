"""What a results page shows of each product, read as plain rows.

Loading a page of `Product` objects (with their category and images) cost the search
page as much as finding the products: the ORM builds and tracks every object. The
page's product cards (`templates/_macros.html`) read a few fields, so the search page
asks `search_products` for `ProductCard`s instead: the same products in the same
order, read as rows. A card answers any other attribute from the product itself,
loaded on first use, so a template that starts showing more stays correct; only
slower, until the field is read here too.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Select, bindparam, select
from sqlalchemy.orm import aliased

from ..catalog.models import Category, Product
from ..extensions import db
from ..images.models import ProductImage, image_path


def _from_model(model: type[Any], key: int, name: str) -> Any:
    """An attribute a card does not hold, read from its row's object. Never for special
    names: those are how Python and Jinja probe an object (`__html__`, ...)."""
    if name.startswith("__"):
        raise AttributeError(name)
    return getattr(db.session.get(model, key), name)


@dataclass(frozen=True, slots=True)
class CardCategory:
    id: int
    name: str

    def __getattr__(self, name: str) -> Any:
        return _from_model(Category, self.id, name)


@dataclass(frozen=True, slots=True)
class CardImage:
    """The image a product shows: its chosen image with the highest id (`Product.image`)."""

    id: int
    content_hash: str

    @property
    def path(self) -> str:
        return image_path(self.content_hash)

    @property
    def thumbnail_path(self) -> str:
        return image_path(self.content_hash, thumbnail=True)

    def __getattr__(self, name: str) -> Any:
        return _from_model(ProductImage, self.id, name)


@dataclass(frozen=True, slots=True)
class ProductCard:
    id: int
    name: str
    slug: str
    price: Decimal
    category: CardCategory
    image: CardImage | None

    def __getattr__(self, name: str) -> Any:
        return _from_model(Product, self.id, name)


_shown = aliased(ProductImage, name="shown_image")


def select_cards(*extra: ColumnElement[Any]) -> Select[Any]:
    """The columns of `from_rows`, then `extra`, from `product` joined to what a card
    shows; join whatever picks the products to it."""
    chosen = (
        select(ProductImage.id)
        .where(ProductImage.product_id == Product.id, ProductImage.chosen)
        .order_by(ProductImage.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    return (
        select(
            Product.id,
            Product.name,
            Product.slug,
            Product.price,
            Category.id,
            Category.name,
            _shown.id,
            _shown.content_hash,
            *extra,
        )
        .select_from(Product)
        .join(Category, Category.id == Product.category_id)
        .outerjoin(_shown, _shown.id == chosen)
    )


def from_rows(rows: Sequence[Sequence[Any]]) -> list[ProductCard]:
    return [
        ProductCard(
            row[0],
            row[1],
            row[2],
            row[3],
            CardCategory(row[4], row[5]),
            None if row[6] is None else CardImage(row[6], row[7]),
        )
        for row in rows
    ]


@functools.cache
def _by_ids() -> Select[Any]:
    """Built once, as the search page's other statements (see `services`)."""
    return select_cards().where(Product.id.in_(bindparam("ids", expanding=True)))


def cards_in_order(ids: Sequence[int]) -> list[ProductCard]:
    """The cards of `ids`, in that order (ids of deleted products are skipped)."""
    if not ids:
        return []
    rows = db.session.execute(_by_ids(), {"ids": list(ids)}).all()
    found = {card.id: card for card in from_rows(rows)}
    return [found[pid] for pid in ids if pid in found]
