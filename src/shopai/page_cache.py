"""Whole catalog pages for anonymous shoppers, served again until the catalog changes.

Shoppers who are not signed in all see the same page for the same URL (no
per-visitor CSRF token: scripts fetch one when they need it), so a rendered page can
be served again as long as nothing it shows has changed. That makes the busiest pages
(search, listings, product pages) cost a dictionary lookup instead of queries and a
template.

Knowing "nothing changed":
- this process: every statement that writes a catalog table (ORM or Core, the
  worker threads' included) marks its connection, and that connection's commit
  bumps a generation number; entries from an older generation are dropped;
- other processes (web workers, `shopai worker`): a revision of the catalog tables
  (row counts and newest change times) is re-read at most every
  `recheck_seconds`;
- anything both miss (a category renamed by another process changes no count or
  time) lives at most `max_age` seconds.
"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any, ParamSpec

from flask import Flask, current_app, request, session
from flask_login import current_user
from sqlalchemy import Engine, event, func, select
from sqlalchemy.orm import Session

from .extensions import db

EXTENSION_KEY = "shopai.page_cache"
CATALOG_TABLES = ("product", "category", "product_image", "product_embedding")
_CATALOG_WRITE = re.compile(
    r"^\s*(?:INSERT\s+(?:OR\s+\w+\s+)?INTO|UPDATE|DELETE\s+FROM)\s+[\"`]?("
    + "|".join(CATALOG_TABLES)
    + r")[\"`]?\b",
    re.IGNORECASE,
)
P = ParamSpec("P")
# Headers a kept page keeps: what decorators outside the cache read from every answer,
# fresh or cached (the search page's hit count, counted by suggest.recording).
SEARCH_HITS_HEADER = "X-Search-Hits"
KEPT_HEADERS = (SEARCH_HITS_HEADER,)

_generation = 0
_generation_lock = threading.Lock()


def catalog_generation() -> int:
    """Bumped by every commit, in this process, that wrote a catalog table."""
    return _generation


def _bump() -> None:
    global _generation
    with _generation_lock:
        _generation += 1


def _note_write(conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
    if _CATALOG_WRITE.match(statement):
        conn.info["shopai_catalog_written"] = True
        _bump()  # also now: a page rendered between write and commit is not kept


def _on_commit(conn: Any) -> None:
    if conn.info.pop("shopai_catalog_written", False):
        _bump()


def _on_rollback(conn: Any) -> None:
    conn.info.pop("shopai_catalog_written", None)


def _after_orm_commit(session: Session) -> None:
    if session.info.pop("shopai_catalog_written", False):
        _bump()


def _note_orm_flush(session: Session, _context: Any, _instances: Any) -> None:
    if any(
        getattr(type(item), "__tablename__", None) in CATALOG_TABLES
        for item in (*session.new, *session.dirty, *session.deleted)
    ):
        session.info["shopai_catalog_written"] = True


def watch_catalog_writes(engine: Engine) -> None:
    """Bump the generation when a write starts, when its connection commits (the event
    fires just before the database commits) and, for ORM sessions, once the commit is
    done: a page rendered in any of those gaps is never kept as current."""
    if not event.contains(engine, "before_cursor_execute", _note_write):
        event.listen(engine, "before_cursor_execute", _note_write)
        event.listen(engine, "commit", _on_commit)
        event.listen(engine, "rollback", _on_rollback)
    if not event.contains(Session, "after_commit", _after_orm_commit):
        event.listen(Session, "before_flush", _note_orm_flush)
        event.listen(Session, "after_commit", _after_orm_commit)


@dataclass(frozen=True)
class _Entry:
    body: bytes
    mimetype: str
    generation: int
    revision: tuple[Any, ...]
    stored_at: float
    headers: tuple[tuple[str, str], ...] = ()


class PageCache:
    """Pages by URL, least recently used dropped first; see the module docstring for
    when an entry stops being current."""

    def __init__(
        self,
        size: int = 256,
        recheck_seconds: float = 2.0,
        max_age: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.size = size
        self.recheck_seconds = recheck_seconds
        self.max_age = max_age
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._revision: tuple[Any, ...] = ()
        self._checked_at = -float("inf")

    def revision(self) -> tuple[Any, ...]:
        """The catalog tables' revision as other processes may have changed it."""
        now = self._clock()
        if now - self._checked_at >= self.recheck_seconds:
            self._revision = _read_revision()
            self._checked_at = now
        return self._revision

    def get(self, key: str) -> _Entry | None:
        """The page for `key` if it was rendered from the catalog as it is now."""
        revision, generation, now = self.revision(), catalog_generation(), self._clock()
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if (
                entry.generation != generation
                or entry.revision != revision
                or now - entry.stored_at > self.max_age
            ):
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return entry

    def put(
        self,
        key: str,
        body: bytes,
        mimetype: str,
        seen: tuple[int, tuple[Any, ...]],
        headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        """Keep a page rendered from the catalog as it was at `seen` (`snapshot()` taken
        before rendering): a change committed during the render makes it stale at once."""
        generation, revision = seen
        entry = _Entry(body, mimetype, generation, revision, self._clock(), headers)
        with self._lock:
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def snapshot(self) -> tuple[int, tuple[Any, ...]]:
        return catalog_generation(), self.revision()


def _read_revision() -> tuple[Any, ...]:
    """Counts and newest change of the catalog tables: what another process's writes move
    (a full count of each table, every `recheck_seconds`: cheap at catalog sizes)."""
    # Imported here: the catalog and search views import this module.
    from .models import Category, Product, ProductEmbedding, ProductImage

    counts = [
        select(func.count(), func.max(Product.updated_at)).select_from(Product),
        select(func.count(), func.max(Category.id)).select_from(Category),
        select(func.count(), func.max(ProductImage.id)).select_from(ProductImage),
        select(func.count(), func.max(ProductEmbedding.updated_at)).select_from(ProductEmbedding),
    ]
    return tuple(tuple(db.session.execute(query).one()) for query in counts)


def _shared_view() -> bool:
    """Whether this request sees what every anonymous visitor sees."""
    if request.method not in ("GET", "HEAD") or current_user.is_authenticated:
        return False
    return "_flashes" not in session


def anonymous_page_cache(view: Callable[P, Any]) -> Callable[P, Any]:
    """Serve a page rendered before to anonymous visitors while the catalog is unchanged."""

    @wraps(view)
    def wrapped(*args: P.args, **kwargs: P.kwargs) -> Any:
        cache: PageCache | None = current_app.extensions.get(EXTENSION_KEY)
        if cache is None or not _shared_view():
            return view(*args, **kwargs)
        key = request.full_path
        if (entry := cache.get(key)) is not None:
            return current_app.response_class(
                entry.body, mimetype=entry.mimetype, headers=list(entry.headers)
            )
        seen = cache.snapshot()  # before rendering: a change during it wins
        response = current_app.make_response(view(*args, **kwargs))
        if response.status_code == 200 and not response.direct_passthrough:
            kept = tuple((h, response.headers[h]) for h in KEPT_HEADERS if h in response.headers)
            cache.put(key, response.get_data(), response.mimetype or "text/html", seen, kept)
        return response

    return wrapped


def init_page_cache(app: Flask) -> None:
    if app.config["SHOPAI_PAGE_CACHE_SIZE"] > 0:
        app.extensions[EXTENSION_KEY] = PageCache(size=app.config["SHOPAI_PAGE_CACHE_SIZE"])
    with app.app_context():
        watch_catalog_writes(db.engine)
