"""Counting submitted searches on the search page, cached or not.

The search page is wrapped in `page_cache.anonymous_page_cache`, so a search seen
before never reaches its view. The view tells what to count in a response header
(`SEARCH_HITS_HEADER`, only for a search with words, on page 1, without filters),
the page cache keeps that header with the page, and `record_submitted_search`,
placed outside the cache, counts the search (and its visitor, see
`services.record_search`) and removes the header.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, ParamSpec

from flask import current_app, request
from werkzeug.wrappers import Response

from ..page_cache import SEARCH_HITS_HEADER

P = ParamSpec("P")


def record_submitted_search(view: Callable[P, Any]) -> Callable[P, Response]:
    @wraps(view)
    def wrapped(*args: P.args, **kwargs: P.kwargs) -> Response:
        response = current_app.make_response(view(*args, **kwargs))
        hits = response.headers.pop(SEARCH_HITS_HEADER, None)
        if hits is not None and request.method == "GET" and response.status_code == 200:
            from .services import record_search  # the search views load before this package

            try:
                count = int(hits)
            except ValueError:
                return response
            record_search(request.args.get("q", ""), count, visitor=request.remote_addr)
        return response

    return wrapped
