"""Request helpers shared by the blueprints."""

from __future__ import annotations

from flask import abort, current_app, request
from flask_sqlalchemy.pagination import Pagination

MAX_PAGE = 10_000
MAX_PER_PAGE = 100


def wants_json() -> bool:
    """API paths, JSON bodies and clients that prefer JSON get JSON errors."""
    if request.path.startswith("/api/") or request.is_json:
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json"


def page_arg(default: int = 1) -> int:
    page = request.args.get("page", default, type=int) or default
    return min(max(page, 1), MAX_PAGE)


def per_page_arg() -> int:
    default = current_app.config["SHOPAI_PER_PAGE"]
    per_page = request.args.get("per_page", default, type=int) or default
    return min(max(per_page, 1), MAX_PER_PAGE)


def existing_page(pagination: Pagination) -> Pagination:
    """404 for a page past the last one (page 1 of an empty listing is fine)."""
    if pagination.page > 1 and not pagination.items:
        abort(404)
    return pagination
