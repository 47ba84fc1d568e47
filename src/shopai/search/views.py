from __future__ import annotations

from typing import Any

from flask import current_app, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from ..catalog.services import find_category
from ..page_cache import SEARCH_HITS_HEADER, anonymous_page_cache
from ..suggest.recording import record_submitted_search
from ..web import existing_page, page_arg
from . import bp
from .forms import search_form
from .services import SearchFilters, search_products


@bp.route("/search")
@record_submitted_search  # outside the cache: cached searches count too
@anonymous_page_cache
def search() -> tuple[str, int] | tuple[str, int, dict[str, str]]:
    form = search_form(request.args)
    valid = form.validate()
    filters = form.filters()
    if not valid or form.category.errors:
        return render_template("search/results.html", form=form, pagination=None), 400
    per_page = current_app.config["SHOPAI_PER_PAGE"]
    pagination = existing_page(search_products(filters, page_arg(), per_page, as_cards=True))
    html = render_template("search/results.html", form=form, pagination=pagination)
    if filters.q and page_arg() == 1 and filters == SearchFilters(q=filters.q, sort=filters.sort):
        # A submitted search, not a later page or a filter refined: counted for the
        # popular suggestions (and found by the cache with the page).
        return html, 200, {SEARCH_HITS_HEADER: str(pagination.total)}
    return html, 200


@bp.route("/product-search")
@bp.route("/product-search/<int:page>")
def product_search(page: int = 1) -> Response:
    """The cookbook's search URL and field names (`name`, `price`, `category`).

    The book also filtered on a `company` column that never existed; it is ignored.
    """
    args: dict[str, Any] = {}
    if name := request.args.get("name", "").strip():
        args["q"] = name
    if price := request.args.get("price", "").strip():
        args["min_price"] = args["max_price"] = price
    if category_key := request.args.get("category", "").strip():
        category = find_category(category_key)
        args["category"] = category.slug if category else category_key
    if page > 1:
        args["page"] = page
    return redirect(url_for("search.search", **args))
