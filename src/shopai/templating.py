"""Jinja filters and globals shared by every template."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from flask import Flask, request, url_for

from .web import url_keeping_query

if TYPE_CHECKING:  # imported lazily: the images package formats prices with `money`
    from .images.models import ProductImage
    from .search.cards import CardImage


def money(value: Decimal | None) -> str:
    return "" if value is None else f"${value:,.2f}"


def page_url(page: int) -> str:
    """The current page's URL with another page number; every filter in the query survives."""
    values = {**(request.view_args or {}), "page": page}
    return url_keeping_query(request.endpoint or "catalog.home", **values)


def image_url(image: ProductImage | CardImage | None, *, thumbnail: bool = False) -> str:
    if image is None:
        return url_for("static", filename="img/placeholder.svg")
    path = image.thumbnail_path if thumbnail else image.path
    return url_for("images.media", filename=path)


def register_template_helpers(app: Flask) -> None:
    app.add_template_filter(money)
    app.add_template_global(page_url)
    app.add_template_global(image_url)
