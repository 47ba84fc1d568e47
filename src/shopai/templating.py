"""Jinja filters and globals shared by every template."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from flask import Flask, request, url_for

from .images.models import ProductImage


def money(value: Decimal | None) -> str:
    return "" if value is None else f"${value:,.2f}"


def page_url(page: int) -> str:
    """The current page's URL with another page number; every filter in the query survives."""
    # Path arguments win over query arguments, and url_for's own "_..." options
    # (_external, _anchor, _method) are never taken from a visitor's query string.
    args: dict[str, Any] = {k: v for k, v in request.args.items() if not k.startswith("_")}
    args.update(request.view_args or {})
    args["page"] = page
    return url_for(request.endpoint or "catalog.home", **args)


def image_url(image: ProductImage | None, *, thumbnail: bool = False) -> str:
    if image is None:
        return url_for("static", filename="img/placeholder.svg")
    path = image.thumbnail_path if thumbnail else image.path
    return url_for("images.media", filename=path)


def register_template_helpers(app: Flask) -> None:
    app.add_template_filter(money)
    app.add_template_global(page_url)
    app.add_template_global(image_url)
