from __future__ import annotations

from typing import Any

from flask import abort, jsonify
from werkzeug.wrappers import Response

from ..catalog import services as catalog
from ..catalog.models import Product
from ..extensions import db
from ..search.services import search_products
from ..search.views import bound_search_form
from ..web import page_arg, per_page_arg
from . import bp
from .serializers import category_dict, page_dict, product_dict


@bp.get("/products")
def products() -> Response | tuple[Response, int]:
    form = bound_search_form()
    valid = form.validate()
    filters = form.filters()
    if not valid or form.category.errors:
        return _invalid(form.errors)
    return jsonify(page_dict(search_products(filters, page_arg(), per_page_arg())))


@bp.get("/products/<int:product_id>")
def product(product_id: int) -> Response:
    return jsonify(product_dict(db.session.get(Product, product_id) or abort(404)))


@bp.get("/categories")
def categories() -> Response:
    return jsonify(items=[category_dict(c) for c in catalog.categories()])


def _invalid(errors: dict[str, Any]) -> tuple[Response, int]:
    body = {"error": {"code": 400, "name": "Bad Request", "message": "Invalid parameters."}}
    body["error"]["fields"] = errors
    return jsonify(body), 400
