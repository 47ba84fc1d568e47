"""Attaching images to products and forgetting them again."""

from __future__ import annotations

from collections.abc import Iterable

from flask import current_app
from sqlalchemy import select

from ..catalog.models import Product
from ..extensions import db
from .models import ProductImage
from .storage import ImageStore, StoredImage


def image_store() -> ImageStore:
    config = current_app.config
    return ImageStore(config["SHOPAI_UPLOAD_DIR"], config["SHOPAI_MAX_IMAGE_PIXELS"])


def store_image(data: bytes) -> StoredImage:
    """Verify, re-encode and store `data`; raises `ImageRejected` for anything else.

    Called before any database change, so a rejected file costs the admin nothing.
    """
    return image_store().save(data)


def attach_image(product: Product, stored: StoredImage, *, source: str = "upload") -> ProductImage:
    """Make a stored image the one the product shows."""
    for existing in product.images:
        existing.chosen = False
    image = ProductImage(
        content_hash=stored.content_hash,
        width=stored.width,
        height=stored.height,
        source=source,
        chosen=True,
    )
    product.images.append(image)
    db.session.commit()
    return image


def delete_unreferenced(content_hashes: Iterable[str]) -> None:
    """Remove files no product uses any more (identical uploads share one file)."""
    store = image_store()
    for content_hash in set(content_hashes):
        still_used = db.session.scalar(
            select(ProductImage.id).where(ProductImage.content_hash == content_hash).limit(1)
        )
        if still_used is None:
            store.delete(content_hash)
