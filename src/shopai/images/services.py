"""Attaching images to products and forgetting them again."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Provenance:
    """Where a generated image came from, kept with it (and shown as "AI-generated")."""

    backend: str
    model: str
    prompt: str
    seed: int | None = None


def attach_image(
    product: Product,
    stored: StoredImage,
    *,
    source: str = "upload",
    provenance: Provenance | None = None,
    chosen: bool = True,
) -> ProductImage:
    """Add a stored image to the product, shown at once if `chosen`, else kept as a
    candidate (generated images wait for the admin's pick). No commit: it is part of
    the caller's unit of work. The same file attached twice stays one row."""
    image = next((i for i in product.images if i.content_hash == stored.content_hash), None)
    if image is None:
        image = ProductImage(
            content_hash=stored.content_hash,
            width=stored.width,
            height=stored.height,
            source=source,
            chosen=False,
        )
        if provenance is not None:
            image.backend = provenance.backend
            image.model = provenance.model
            image.prompt = provenance.prompt
            image.seed = provenance.seed
        product.images.append(image)
    if chosen:
        choose_image(product, image)
    return image


def choose_image(product: Product, image: ProductImage) -> None:
    """Make `image` the one the product shows (at most one is chosen)."""
    for existing in product.images:
        existing.chosen = existing is image


def add_uploaded_image(product: Product, stored: StoredImage) -> ProductImage:
    """An admin's upload becomes the product's image."""
    image = attach_image(product, stored)
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
