"""Plain-dict views of catalog objects; prices travel as strings to keep their cents exact."""

from __future__ import annotations

from typing import Any

from flask import url_for
from flask_sqlalchemy.pagination import Pagination

from ..catalog.models import Category, Product


def category_dict(category: Category) -> dict[str, Any]:
    return {
        "id": category.id,
        "name": category.name,
        "slug": category.slug,
        "description": category.description,
        "url": url_for("catalog.category", key=category.slug, _external=True),
    }


def product_dict(product: Product) -> dict[str, Any]:
    image = product.image
    return {
        "id": product.id,
        "name": product.name,
        "slug": product.slug,
        "description": product.description,
        "price": str(product.price),
        "category": {"id": product.category.id, "name": product.category.name},
        "featured": product.featured,
        "url": url_for("catalog.product", key=product.slug, _external=True),
        "image": None
        if image is None
        else {
            "url": url_for("images.media", filename=image.path, _external=True),
            "thumbnail_url": url_for("images.media", filename=image.thumbnail_path, _external=True),
            "width": image.width,
            "height": image.height,
            "source": image.source,
        },
        # Flat image fields, also null without an image (the shopper sees a placeholder).
        "image_url": None
        if image is None
        else url_for("images.media", filename=image.path, _external=True),
        "thumbnail_url": None
        if image is None
        else url_for("images.media", filename=image.thumbnail_path, _external=True),
        "image_ai_generated": image is not None and image.ai_generated,
        "created_at": product.created_at.isoformat(),
        "updated_at": product.updated_at.isoformat(),
    }


def page_dict(pagination: Pagination) -> dict[str, Any]:
    return {
        "items": [product_dict(product) for product in pagination.items],
        "page": pagination.page,
        "per_page": pagination.per_page,
        "total": pagination.total,
        "pages": pagination.pages,
    }
