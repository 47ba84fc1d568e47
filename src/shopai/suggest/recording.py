"""Counting submitted searches on the search page, cached or not, off the request.

The search page is wrapped in `page_cache.anonymous_page_cache`, so a search seen
before never reaches its view. The view tells what to count in a response header
(`SEARCH_HITS_HEADER`, only for a search with words, on page 1, without filters),
the page cache keeps that header with the page, and `record_submitted_search`,
placed outside the cache, removes the header and hands the search to this app's
`SearchRecorder`.

Counting (an upsert, the visitor's row, a commit: `services.record_searches`) is a
statistic nobody waits for, and done in the request it was the largest part of an
uncached search page after the search itself. So the page only queues it; a
background writer (`background.BackgroundWriter`, the one the AI usage ledger uses)
counts the queued searches in batches, one commit each, each search exactly once,
within about `LINGER_SECONDS` of the search. Tests and commands that read the counts
call `flush_searches()` first.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any, ParamSpec

from flask import Flask, current_app, request
from werkzeug.wrappers import Response

from ..background import BackgroundWriter
from ..extensions import db
from ..page_cache import SEARCH_HITS_HEADER

P = ParamSpec("P")
EXTENSION_KEY = "shopai.search_recorder"
WRITER_NAME = "shopai-search-recorder"
# How long the writer gathers searches before counting them: a busy shop's searches
# are counted a few dozen per commit, repeats of a query in one row's update.
LINGER_SECONDS = 1.0


@dataclass(frozen=True)
class SubmittedSearch:
    """What the request knew: the words as typed, the hits shown, the client address."""

    q: str
    hits: int
    visitor: str | None


class SearchRecorder(BackgroundWriter[SubmittedSearch]):
    """Counts submitted searches of one app on a writer thread, in that app's context
    (the counting reads the app's settings and suggestion vocabulary)."""

    thread_name = WRITER_NAME

    def __init__(self, app: Flask) -> None:
        with app.app_context():
            engine = db.engine
        super().__init__(engine, linger_seconds=LINGER_SECONDS)
        self.app = app

    def write(self, batch: list[SubmittedSearch]) -> None:
        from .services import record_searches  # the search views load before this package

        with self.app.app_context():
            record_searches([(s.q, s.hits, s.visitor) for s in batch])


_CREATING = threading.Lock()


def search_recorder() -> SearchRecorder:
    """The current app's recorder, made on first use."""
    extensions = current_app.extensions
    recorder: SearchRecorder | None = extensions.get(EXTENSION_KEY)
    if recorder is None:
        with _CREATING:  # one per app, however many requests arrive at once
            recorder = extensions.get(EXTENSION_KEY)
            if recorder is None:
                app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
                recorder = extensions[EXTENSION_KEY] = SearchRecorder(app)
    return recorder


def flush_searches(timeout: float = 5.0) -> bool:
    """Wait until every search handed over so far in the current app is counted. For
    tests and commands about to read the counts; False if `timeout` ran out."""
    recorder: SearchRecorder | None = current_app.extensions.get(EXTENSION_KEY)
    return True if recorder is None else recorder.flush(timeout)


def record_submitted_search(view: Callable[P, Any]) -> Callable[P, Response]:
    @wraps(view)
    def wrapped(*args: P.args, **kwargs: P.kwargs) -> Response:
        response = current_app.make_response(view(*args, **kwargs))
        hits = response.headers.pop(SEARCH_HITS_HEADER, None)
        if hits is not None and request.method == "GET" and response.status_code == 200:
            try:
                count = int(hits)
            except ValueError:
                return response
            search = SubmittedSearch(request.args.get("q", ""), count, request.remote_addr)
            search_recorder()(search)
        return response

    return wrapped
