"""Catalog management for staff with the admin role."""

from flask import Blueprint

# No url_prefix: the cookbook's `/product-create` and `/category-create` live here too.
bp = Blueprint("admin", __name__)

from . import views  # noqa: E402, F401
