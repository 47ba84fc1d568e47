"""Shopper pages. The book's URLs (`/home`, `/products/<page>`, `/product/<id>`...) stay valid."""

from __future__ import annotations

from flask import abort, current_app, redirect, render_template
from werkzeug.wrappers import Response

from ..page_cache import anonymous_page_cache
from ..web import existing_page, page_arg, url_keeping_query
from . import bp, services


@bp.route("/home")
@bp.route("/")
@anonymous_page_cache
def home() -> str:
    return render_template(
        "catalog/home.html",
        featured=services.featured_products(8),
        newest=services.newest_products(8),
        categories=services.categories(),
    )


@bp.route("/products")
@bp.route("/products/<int(max=10000):page>")
@anonymous_page_cache
def products(page: int | None = None) -> str:
    pagination = existing_page(services.product_page(page or page_arg(), per_page=_per_page()))
    return render_template("catalog/products.html", pagination=pagination)


@bp.route("/product/<key>")
@anonymous_page_cache
def product(key: str) -> str | Response:
    item = services.find_product(key) or abort(404)
    if key != item.slug:  # one canonical address; 302, since a rename changes the slug
        return redirect(url_keeping_query("catalog.product", key=item.slug))
    return render_template("catalog/product.html", product=item)


@bp.route("/categories")
@anonymous_page_cache
def categories() -> str:
    return render_template(
        "catalog/categories.html",
        categories=services.categories(),
        counts=services.category_product_counts(),
    )


@bp.route("/category/<key>")
@anonymous_page_cache
def category(key: str) -> str | Response:
    item = services.find_category(key) or abort(404)
    if key != item.slug:
        return redirect(url_keeping_query("catalog.category", key=item.slug))
    pagination = existing_page(
        services.product_page(page_arg(), per_page=_per_page(), category=item)
    )
    return render_template("catalog/category.html", category=item, pagination=pagination)


def _per_page() -> int:
    return current_app.config["SHOPAI_PER_PAGE"]
