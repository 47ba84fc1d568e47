from __future__ import annotations

from flask import abort, current_app, jsonify, request
from werkzeug.wrappers import Response

from ..catalog import services as catalog
from ..catalog.models import Product
from ..errors import json_error
from ..extensions import db
from ..images.generation import image_status
from ..search.forms import search_form
from ..search.services import search_products
from ..web import page_arg, per_page_arg
from . import bp
from .openapi import openapi_document
from .serializers import category_dict, page_dict, product_dict


@bp.get("/products")
def products() -> Response:
    form = search_form(request.args)
    valid = form.validate()
    filters = form.filters()
    if not valid or form.category.errors:
        return json_error(400, "Bad Request", "Invalid parameters.", fields=form.errors)
    return jsonify(page_dict(search_products(filters, page_arg(), per_page_arg())))


@bp.get("/products/<id:product_id>")
def product(product_id: int) -> Response:
    """One product, with the state of its latest image request (`image_status`: none,
    queued, running, succeeded, failed), which pages poll while an image is drawn."""
    item = db.session.get(Product, product_id) or abort(404)
    return jsonify({**product_dict(item), "image_status": image_status(item.id)})


@bp.get("/categories")
def categories() -> Response:
    return jsonify(items=[category_dict(c) for c in catalog.categories()])


@bp.get("/openapi.json")
def openapi() -> Response:
    """The OpenAPI 3.1 description of every JSON route under /api (see `openapi.py`)."""
    document = openapi_document(current_app.config["SHOPAI_CHAT_MAX_MESSAGE_CHARS"])
    response = jsonify(document)
    response.headers["Cache-Control"] = "public, max-age=300"
    return response
