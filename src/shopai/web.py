"""Request helpers shared by the blueprints."""

from __future__ import annotations

import functools
import logging
from typing import Any

from flask import abort, current_app, request
from flask.globals import request_ctx
from flask_sqlalchemy.pagination import Pagination
from limits import parse_many
from limits.storage import MemoryStorage
from limits.strategies import FixedWindowRateLimiter
from werkzeug.datastructures import MultiDict
from werkzeug.routing import IntegerConverter

from .extensions import limiter
from .text import MAX_ID

log = logging.getLogger(__name__)

MAX_PAGE = 10_000
MAX_PER_PAGE = 100


class IdConverter(IntegerConverter):
    """`<id:product_id>`: a row id. Past the largest one the tables hold, the URL
    matches nothing (a 404) instead of reaching the database (a 500 on PostgreSQL)."""

    def __init__(self, map: Any) -> None:
        super().__init__(map, min=1, max=MAX_ID)


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


def url_keeping_query(endpoint: str, /, **values: Any) -> str:
    """A URL for `endpoint` that keeps the current query string, `values` overriding.

    Spreading `request.args` into `url_for` lets a visitor's parameter names collide
    with its own (`endpoint`, `_method`, `_external`) or with path arguments (`key`),
    which crashed pages. Handing the URL map one mapping instead makes every visitor
    parameter plain data, passed through as a query parameter. (The shop registers no
    `url_defaults` or build-error hooks, which this path does not run.) The request's
    own URL adapter builds it: making one per link cost a results page's pager more
    than the rest of its links together.
    """
    merged = MultiDict(request.args)
    for name, value in values.items():
        merged.setlist(name, [value])
    adapter = request_ctx.url_adapter
    assert adapter is not None  # always bound inside a request
    return adapter.build(endpoint, merged)


def within_rate(setting: str, scope: str, key: str) -> bool:
    """Spend one hit of each rate in the Flask-Limiter setting `setting` ("10 per
    minute;100 per day") for `key` in `scope`; False once any is spent. For budgets a
    view checks itself, where only some requests spend them (a decorator counts all).

    The hits go to the limiter's storage (Redis when scaled out, so the budget is one
    for all web processes). If that storage cannot be reached they are counted in this
    process instead, as the limiter's own decorators do: a Redis outage loosens a
    budget to one per process for a while, it never turns a page into an error."""
    if not limiter.enabled:
        return True
    rates = parse_many(current_app.config[setting])
    try:
        return all(limiter.limiter.hit(rate, scope, key) for rate in rates)
    except Exception as exc:  # redis.RedisError, OSError: whatever the storage raises
        log.warning("rate limit storage unreachable (%s); counting in this process", exc)
        return all(_fallback().hit(rate, scope, key) for rate in rates)


@functools.cache
def _fallback() -> FixedWindowRateLimiter:
    """Where `within_rate` counts while the limiter's storage is unreachable (made on
    first need: a memory storage starts a timer thread)."""
    return FixedWindowRateLimiter(MemoryStorage())
