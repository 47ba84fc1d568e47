"""Attaching images to products and forgetting them again."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from typing import Any

from flask import current_app
from sqlalchemy import select

from ..catalog.models import Product
from ..extensions import db
from .models import ProductImage
from .storage import ImageStore, StoredImage

ProgressFactory = Callable[[list[str], str], Any]


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


def collect_garbage(min_age_seconds: float, progress: ProgressFactory | None = None) -> int:
    """Delete stored files that no product image references and that are older than
    `min_age_seconds`; returns how many images were removed.

    Deleting only old files is what makes this safe while the shop runs: an upload
    stores its file a moment before its row is committed, and an identical upload
    reuses an existing file, so a young unreferenced file may be about to be used.
    """
    store = image_store()
    referenced = set(db.session.scalars(select(ProductImage.content_hash).distinct()))
    candidates = store.stored_hashes()
    removed = 0
    with progress(candidates, "Images") if progress else nullcontext(candidates) as items:
        for content_hash in items:
            if (
                content_hash not in referenced
                and store.age_seconds(content_hash) >= min_age_seconds
            ):
                store.delete(content_hash)
                removed += 1
    return removed
