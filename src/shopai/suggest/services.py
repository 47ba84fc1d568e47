"""The suggestion engine: search suggestions in milliseconds, from the catalog.

`suggest(q)` never calls a model. Its candidates come from memory:

- the catalog (source "catalog"): product names, their leading phrases and the runs
  of 1-3 words inside them, category names;
- model-made shopper queries per product, already verified by the jobs that wrote
  them (source "ai", table `product_query`);
- popular searches: submitted at least SHOPAI_SUGGEST_POPULAR_MIN_SEARCHES times and
  found something (source "popular");
- for a settled query (the shopper paused or submitted), the model's expansions of
  that very query once a background job has made them (source "ai").

Each candidate shown carries `hits`, the number of products the catalog search finds
for it (counted in the full-text index, cached until the catalog changes); one with
no hits is never shown, whatever its source. Exact and popular ones come first, then
the closest (typos last), then those with more hits.

When a settled query finds few products and the model was never asked about it,
`suggest` asks `shopai.suggest.tasks.request_expansion` to queue a job; no request
waits for it. The in-memory candidates are rebuilt when the catalog changes: at once
for writes in this process (page_cache.catalog_generation); for other processes'
writes and new model-made queries (a revision of the product, category and
product_query tables, read every SHOPAI_SUGGEST_RECHECK_SECONDS) at most every
`MIN_REBUILD_SECONDS`; and at least every `MAX_AGE_SECONDS`. Hits are always counted
against the live index, so an older snapshot may miss a new phrase but never offers
a search that finds nothing.

Candidate sources, rankings and the index itself: see suggest.index; text rules
(normalization, words, highlights): suggest.text.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from flask import current_app
from sqlalchemy import case, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from ..cache import Cache, shared_cache
from ..catalog.models import Category, Product
from ..db_types import utcnow
from ..extensions import db
from ..page_cache import catalog_generation
from ..search import keyword
from ..search.tokens import MAX_QUERY_TERMS
from .index import Entry, PhraseIndex, add_entry, name_phrases, text_entry
from .models import (
    VISITOR_HASH_CHARS,
    BlockedTerm,
    ExpansionStatus,
    ProductQuery,
    QueryExpansion,
    SearchQuery,
    SearchVisitor,
)
from .text import (
    MAX_QUERY_CHARS,
    expansion_key,
    highlight,
    is_cjk,
    match_key,
    match_words,
    matches_all,
    normalize_query,
)

log = logging.getLogger(__name__)

EXTENSION_KEY = "shopai.suggest"
DEFAULT_LIMIT = 8
MAX_LIMIT = 20
PRODUCT_HITS = 4  # products shown under the suggestions
CATEGORY_HITS = 3
POPULAR_POOL = 2000  # popular searches kept in memory, most submitted first
MAX_AGE_SECONDS = 300.0  # rebuild at least this often (changes no revision sees)
MIN_REBUILD_SECONDS = 10.0  # other processes' changes rebuild at most this often
HITS_CACHE_SIZE = 50_000  # in memory; Redis bounds its own
HITS_TTL_SECONDS = 3600.0  # a catalog revision's counts outlive it by at most this
MAX_VARIANTS = 8  # readings of a query with typos, tried fewest edits first
SOURCES = ("catalog", "ai", "popular")


class SuggestError(ValueError):
    """Input the engine refuses; the message is fit for a form or a JSON error."""


# -- results -------------------------------------------------------------------------


@dataclass(frozen=True)
class Suggestion:
    text: str  # normalized, as the search box should receive it
    source: str  # "catalog" | "ai" | "popular"
    hits: int  # products the catalog search finds for it (always > 0)
    highlight: list[list[int]]  # [start, end) offsets into `text` of what matched


@dataclass(frozen=True)
class ProductHit:
    id: int
    name: str
    price: Decimal
    slug: str
    thumbnail_path: str | None
    highlight: list[list[int]]  # offsets into `name`


@dataclass(frozen=True)
class CategoryHit:
    id: int
    name: str
    slug: str
    highlight: list[list[int]]  # offsets into `name`


@dataclass(frozen=True)
class SuggestResult:
    query: str  # the query normalized
    suggestions: list[Suggestion]
    products: list[ProductHit]
    categories: list[CategoryHit]
    query_hits: int  # products the catalog search finds for the query itself
    expansion_requested: bool = False


# -- what is kept in memory ----------------------------------------------------------


@dataclass(frozen=True)
class _CategoryEntry:
    id: int
    name: str
    slug: str
    products: int


@dataclass(frozen=True)
class _CatalogSnapshot:
    phrases: PhraseIndex
    categories: list[_CategoryEntry]
    revision: tuple[tuple[Any, ...], tuple[Any, ...]]  # (catalog, model-made queries)
    generation: int
    built_at: float


class BlockList:
    """Blocked terms, matched on words: a term hides a text holding it as whole words
    (accents, case and joiners aside: "usb-c" hides "usb c hub"); a term with CJK
    characters hides a text holding it anywhere."""

    def __init__(self, terms: Sequence[str]) -> None:
        self.terms = list(terms)
        patterns = []
        for term in terms:
            key = match_key(normalize_query(term))
            if not key:
                continue
            if any(is_cjk(char) for char in key):
                patterns.append(re.escape(key))
            else:
                patterns.append(rf"(?:^| ){re.escape(key)}(?: |$)")
        self._pattern = re.compile("|".join(patterns)) if patterns else None

    def hides(self, text: str) -> bool:
        return self._pattern is not None and self._pattern.search(match_key(text)) is not None


@dataclass(frozen=True)
class _PopularSnapshot:
    rows: tuple[tuple[str, int], ...]  # (query, visitor-days), most visitors first
    phrases: PhraseIndex
    blocked: BlockList
    loaded_at: float
    catalog: _CatalogSnapshot | None  # whose vocabulary the rows were checked against


class _HitsCache:
    """How many products the search finds per text, valid for one catalog revision.

    Kept in the shared cache (`shopai.cache`: Redis when set), so every web process
    counts a text once per revision between them. The revision is part of each key:
    a changed catalog simply stops finding the old counts, which expire."""

    def __init__(self, cache: Cache) -> None:
        self._cache = cache
        self.revision: tuple[Any, ...] | None = None
        self._tag = ""

    def reset(self, revision: tuple[Any, ...]) -> None:
        if revision != self.revision:
            self._tag = hashlib.sha256(repr(revision).encode()).hexdigest()[:16]
            self.revision = revision

    def get_many(self, texts: Sequence[str]) -> list[int | None]:
        if self.revision is None:  # no catalog read yet: no key to look under
            return [None] * len(texts)
        tag = self._tag
        found = self._cache.get_many([f"{tag}:{text}" for text in texts])
        return [None if value is None else _as_count(value) for value in found]

    def get(self, text: str) -> int | None:
        return self.get_many([text])[0]

    def put(self, text: str, hits: int, revision: tuple[Any, ...] | None) -> None:
        if revision is None or revision != self.revision:
            return  # counted against a catalog that has changed since (or never read)
        self._cache.set_many({f"{self._tag}:{text}": str(hits).encode()}, HITS_TTL_SECONDS)


def _as_count(value: bytes) -> int | None:
    try:
        return int(value)
    except ValueError:
        return None  # not ours: counted again


@dataclass
class SuggestState:
    """One per app and process: the snapshots and the hits cache."""

    recheck_seconds: float
    hits: _HitsCache
    clock: Callable[[], float] = time.monotonic
    _catalog: _CatalogSnapshot | None = None
    _popular: _PopularSnapshot | None = None
    _checked_at: float = -float("inf")
    _seen_generation: int = -1
    _forced: bool = False
    _build_lock: threading.Lock = field(default_factory=threading.Lock)
    _popular_lock: threading.Lock = field(default_factory=threading.Lock)
    _builder: threading.Thread | None = None

    def invalidate(self) -> None:
        """Rebuild and reload on the next call (this process changed what they hold)."""
        self._checked_at, self._forced = -float("inf"), True
        self._popular = None if self._popular is None else _expired(self._popular)

    def catalog(self) -> _CatalogSnapshot:
        """The candidates as of the catalog now. A change made by this process (the
        catalog generation moved) rebuilds them at once; changes seen only in the
        revision (other processes, model-made queries) at most every
        `MIN_REBUILD_SECONDS`: every suggestion's hits are counted live, so an older
        snapshot can miss a new phrase but never offer a search that finds nothing."""
        now, generation = self.clock(), catalog_generation()
        snapshot = self._catalog
        if (
            snapshot is not None
            and not self._forced
            and generation == self._seen_generation
            and now - self._checked_at < self.recheck_seconds
            and now - snapshot.built_at < MAX_AGE_SECONDS
        ):
            return snapshot
        revision = _read_revision()
        self._checked_at, self._seen_generation = now, generation
        self.hits.reset(revision[0])
        if snapshot is not None and not self._forced:
            age = now - snapshot.built_at
            if snapshot.revision == revision and age < MAX_AGE_SECONDS:
                return snapshot
            changed_here = snapshot.generation != generation and snapshot.revision[0] != revision[0]
            if not changed_here and age < MIN_REBUILD_SECONDS:
                return snapshot
        # One thread rebuilds; the others keep answering from the previous snapshot.
        if not self._build_lock.acquire(blocking=snapshot is None):
            assert snapshot is not None
            return snapshot
        inline = current_app.config.get("SHOPAI_SUGGEST_BUILD_INLINE", current_app.testing)
        if snapshot is not None and not inline:
            # Off the shopper's request: a rebuild takes about a second at 10,000 products.
            app = current_app._get_current_object()  # type: ignore[attr-defined]
            self._builder = threading.Thread(
                target=self._build_in_background,
                args=(app, snapshot, revision, generation),
                name="suggest-index-build",
                daemon=True,
            )
            self._builder.start()
            return snapshot
        try:
            return self._build(snapshot, revision, generation)
        finally:
            self._build_lock.release()

    def _build(
        self,
        snapshot: _CatalogSnapshot | None,
        revision: tuple[tuple[Any, ...], tuple[Any, ...]],
        generation: int,
    ) -> _CatalogSnapshot:
        """Build a snapshot (the caller holds `_build_lock`)."""
        latest = self._catalog
        if latest is not None and latest is not snapshot and latest.revision == revision:
            return latest
        self._forced = False
        self._catalog = _build_catalog(revision, generation, self.clock())
        return self._catalog

    def _build_in_background(
        self,
        app: Any,
        snapshot: _CatalogSnapshot,
        revision: tuple[tuple[Any, ...], tuple[Any, ...]],
        generation: int,
    ) -> None:
        try:
            with app.app_context():
                try:
                    self._build(snapshot, revision, generation)
                except Exception:
                    log.exception("could not rebuild the suggestion index")
                    self._checked_at = -float("inf")  # try again on the next call
                finally:
                    db.session.remove()
        finally:
            self._build_lock.release()

    def wait_for_rebuild(self, timeout: float | None = None) -> None:
        """Wait for a background rebuild to finish (tests, the CLI)."""
        builder = self._builder
        if builder is not None:
            builder.join(timeout)

    def reload_popular(self) -> None:
        """Reload popular searches and blocked terms on the next call (the catalog
        snapshot does not hold them, so it is kept)."""
        self._popular = None if self._popular is None else _expired(self._popular)

    def popular(self) -> _PopularSnapshot:
        snapshot, now, catalog = self._popular, self.clock(), self.catalog()
        if (
            snapshot is not None
            and snapshot.catalog is catalog
            and now - snapshot.loaded_at < self.recheck_seconds
        ):
            return snapshot
        with self._popular_lock:
            latest = self._popular
            if latest is not snapshot and latest is not None and latest.catalog is catalog:
                return latest
            self._popular = _load_popular(snapshot, now, catalog)
            return self._popular


def _expired(snapshot: _PopularSnapshot) -> _PopularSnapshot:
    return _PopularSnapshot(
        snapshot.rows, snapshot.phrases, snapshot.blocked, -float("inf"), snapshot.catalog
    )


def state() -> SuggestState:
    extensions = current_app.extensions
    found = extensions.get(EXTENSION_KEY)
    if found is None:
        hits = _HitsCache(shared_cache("suggest-hits", HITS_CACHE_SIZE))
        found = extensions.setdefault(
            EXTENSION_KEY, SuggestState(current_app.config["SHOPAI_SUGGEST_RECHECK_SECONDS"], hits)
        )
    return found


def invalidate_suggestions() -> None:
    """Call after writing `product_query`, `query_expansion` or `blocked_term` rows in
    this process so the next suggestion sees them at once (other processes see them
    within SHOPAI_SUGGEST_RECHECK_SECONDS)."""
    state().invalidate()


def _read_revision() -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """What the candidates are built from, summarized: the catalog (product count and
    newest edit, every category's name: a rename changes no count), and the model-made
    queries (count and newest id)."""
    products = tuple(
        db.session.execute(
            select(func.count(), func.max(Product.updated_at)).select_from(Product)
        ).one()
    )
    names = db.session.execute(select(Category.id, Category.name).order_by(Category.id)).all()
    digest = hashlib.sha256(repr([tuple(row) for row in names]).encode()).hexdigest()
    queries = tuple(
        db.session.execute(
            select(func.count(), func.max(ProductQuery.id)).select_from(ProductQuery)
        ).one()
    )
    return (*products, digest), queries


def _build_catalog(
    revision: tuple[tuple[Any, ...], tuple[Any, ...]], generation: int, now: float
) -> _CatalogSnapshot:
    started = time.perf_counter()
    counts: dict[str, int] = {}
    first: dict[str, tuple[str, int]] = {}  # the text as first written, and its product
    names = select(Product.id, Product.name).order_by(Product.featured.desc(), Product.id)
    for product_id, name in db.session.execute(names):
        for key, text in name_phrases(name):
            if key in counts:
                counts[key] += 1
            else:
                counts[key] = 1
                first[key] = (text, product_id)
    entries = {
        key: Entry(first[key][0], "catalog", count, first[key][1]) for key, count in counts.items()
    }

    rows = db.session.execute(
        select(Category.id, Category.name, Category.slug, func.count(Product.id))
        .outerjoin(Product, Product.category_id == Category.id)
        .group_by(Category.id, Category.name, Category.slug)
        .order_by(func.count(Product.id).desc(), Category.name)
    ).all()
    categories = [_CategoryEntry(*row) for row in rows]
    for category in categories:
        if (found := text_entry(category.name, "catalog", category.products)) is not None:
            add_entry(entries, *found)

    made = db.session.execute(
        select(ProductQuery.text, func.count(func.distinct(ProductQuery.product_id))).group_by(
            ProductQuery.text
        )
    )
    for text, products in made:
        if (found := text_entry(text, "ai", products)) is not None:
            add_entry(entries, *found)
    db.session.commit()  # end the read transaction; nothing was written

    snapshot = _CatalogSnapshot(PhraseIndex(entries), categories, revision, generation, now)
    log.info(
        "suggestion index built: %d candidates from %d names in %.0f ms",
        len(snapshot.phrases),
        sum(category.products for category in categories),
        (time.perf_counter() - started) * 1000,
    )
    return snapshot


def popular_words_known(text: str, phrases: PhraseIndex) -> bool:
    """Whether `text` may be a popular search: at most MAX_QUERY_TERMS words, each one
    a word of the catalog's vocabulary. The full-text search only reads the first
    MAX_QUERY_TERMS words, so its hits say nothing about any word after them; and a
    look-alike letter (a Cyrillic e, U+0435) makes a word the catalog does not have."""
    words = match_key(text).split()
    return 0 < len(words) <= MAX_QUERY_TERMS and all(phrases.has_word(w) for w in words)


def _load_popular(
    previous: _PopularSnapshot | None, now: float, catalog: _CatalogSnapshot
) -> _PopularSnapshot:
    minimum = current_app.config["SHOPAI_SUGGEST_POPULAR_MIN_SEARCHES"]
    visitors = func.count(SearchVisitor.id)
    found = db.session.execute(
        select(SearchQuery.query, visitors)
        .join(SearchVisitor, SearchVisitor.query_id == SearchQuery.id)
        .where(SearchQuery.last_hits > 0)
        .group_by(SearchQuery.id, SearchQuery.query)
        .having(visitors >= minimum)
        .order_by(visitors.desc(), SearchQuery.query)
        .limit(POPULAR_POOL)
    )
    rows = tuple(
        (query, int(count)) for query, count in found if popular_words_known(query, catalog.phrases)
    )
    blocked = BlockList(list(db.session.scalars(select(BlockedTerm.term).order_by(BlockedTerm.id))))
    db.session.commit()
    if previous is not None and previous.rows == rows:
        phrases = previous.phrases
    else:
        entries: dict[str, Entry] = {}
        for query, submitted in rows:
            if (entry := text_entry(query, "popular", submitted)) is not None:
                entries.setdefault(*entry)
        phrases = PhraseIndex(entries)
    return _PopularSnapshot(rows, phrases, blocked, now, catalog)


# -- the engine ----------------------------------------------------------------------

# Ranking every match by bm25 costs tens of milliseconds when a short prefix matches
# thousands of products; beyond this many, the products shown are those whose names
# gave the best suggestions (each one a match of the query too).
RANKED_PRODUCTS_MAX = 300


@dataclass
class _Candidate:
    key: str
    text: str
    source: str
    weight: int
    edits: int  # typos corrected to reach it (model expansions count as 1)
    exact: bool
    popularity: int = 0  # submissions, for popular searches
    product_id: int | None = None


def _readings(
    phrases: PhraseIndex, words: list[str], last_complete: bool
) -> list[tuple[str, bool, int]]:
    """(key prefix, whether its last word is whole, edits) for each way of reading the
    typed words against `phrases`, fewest edits first."""
    per_word = [
        phrases.alternatives(word, last=at == len(words) - 1 and not last_complete)
        for at, word in enumerate(words)
    ]
    combos = itertools.islice(itertools.product(*per_word), 64)
    readings = sorted(
        (
            (" ".join(alt.word for alt in combo), combo[-1].complete, sum(a.edits for a in combo))
            for combo in combos
        ),
        key=lambda reading: reading[2],
    )
    return readings[:MAX_VARIANTS]


def _collect(
    phrases: PhraseIndex,
    words: list[str],
    last_complete: bool,
    count: int,
    into: dict[str, _Candidate],
    popular: bool = False,
) -> None:
    query_key = " ".join(words)
    for prefix, complete, edits in _readings(phrases, words, last_complete):
        for position in phrases.top(prefix, complete, count):
            key, entry = phrases.keys[position], phrases.entries[position]
            found = into.get(key)
            if found is None:
                found = into[key] = _Candidate(
                    key, entry.text, entry.source, entry.weight, edits, key == query_key
                )
            found.edits = min(found.edits, edits)
            if popular:
                found.source, found.popularity = "popular", entry.weight
            else:
                found.weight = max(found.weight, entry.weight)
                if found.product_id is None:
                    found.product_id = entry.product_id


def count_hits(text: str) -> int:
    """Products the catalog search finds for `text` (full-text, the whole catalog),
    cached until the catalog changes."""
    cached = state().hits.get(text)
    return _count_and_keep(text) if cached is None else cached


def _count_and_keep(text: str) -> int:
    cache = state().hits
    revision = cache.revision
    hits = keyword.count(None, text) if keyword.has_terms(text) else 0
    cache.put(text, hits, revision)
    return hits


def _verified(
    candidates: Sequence[_Candidate], limit: int, blocked: BlockList
) -> list[tuple[_Candidate, int]]:
    """The best `limit` candidates the search finds products for, with their hits.

    Varied first: a candidate that only adds words to one already taken ("wireless
    headphones pro" after "wireless headphones") waits until the others are in."""
    ordered = sorted(
        candidates,
        key=lambda c: (not c.exact, -c.popularity, c.edits, -c.weight, len(c.text), c.text),
    )
    texts = list(dict.fromkeys(c.text for c in ordered))
    known = dict(zip(texts, state().hits.get_many(texts), strict=True))  # one round trip
    budget = 3 * limit  # counts run per call; cached ones are free
    kept: list[tuple[_Candidate, int]] = []
    waiting: list[_Candidate] = []

    def take(candidate: _Candidate) -> None:
        nonlocal budget
        if blocked.hides(candidate.text):
            return
        hits = known.get(candidate.text)
        if hits is None:
            if budget <= 0:
                return
            budget -= 1
            hits = known[candidate.text] = _count_and_keep(candidate.text)
        if hits > 0:
            kept.append((candidate, hits))

    for candidate in ordered:
        if len(kept) >= limit:
            break
        if any(candidate.key.startswith(taken.key + " ") for taken, _ in kept):
            waiting.append(candidate)
        else:
            take(candidate)
    for candidate in waiting:
        if len(kept) >= limit:
            break
        take(candidate)
    kept.sort(key=lambda k: (not k[0].exact, -k[0].popularity, k[0].edits, -k[1], len(k[0].text)))
    return kept


def _suggestions(kept: list[tuple[_Candidate, int]], words: list[str]) -> list[Suggestion]:
    return [
        Suggestion(c.text, c.source, hits, highlight(c.text, words, typos=c.edits > 0))
        for c, hits in kept
    ]


def _popular_suggestions(query: str, popular: _PopularSnapshot, limit: int) -> list[Suggestion]:
    """For an empty or one-character query: the popular searches (those beginning
    with the character first, if any do)."""
    rows = [row for row in popular.rows if row[0].startswith(query)] or list(popular.rows)
    candidates = [
        _Candidate(match_key(q), q, "popular", n, 0, False, n) for q, n in rows[: 3 * limit]
    ]
    words = [query] if query and any(q.startswith(query) for q, _ in rows) else []
    return _suggestions(_verified(candidates, limit, popular.blocked), words)


def _expansion(query: str) -> QueryExpansion | None:
    key = expansion_key(query)
    return db.session.scalar(select(QueryExpansion).where(QueryExpansion.query == key))


def _product_hits(
    query: str, query_hits: int, kept: list[tuple[_Candidate, int]]
) -> tuple[list[ProductHit], list[str]]:
    """A few products for the query, or for the first suggestion when the query finds
    none (a typo corrected); and the words they were matched with."""
    shown, found = query, query_hits
    if not query_hits:
        if not kept:
            return [], match_words(query)
        shown, found = kept[0][0].text, kept[0][1]
    if found <= RANKED_PRODUCTS_MAX:
        ranked = keyword.ranked(select(Product.id), shown).limit(PRODUCT_HITS)
        ids = list(db.session.scalars(ranked))
    else:
        ids = []
        shown_key = match_key(shown)
        for candidate, _hits in kept:  # a name holding these words holds the shown ones
            pid = candidate.product_id
            if pid is not None and candidate.key.startswith(shown_key) and pid not in ids:
                ids.append(pid)
        ids = ids[:PRODUCT_HITS]
        if len(ids) < PRODUCT_HITS:
            more = select(Product.id).where(keyword.matches(shown), Product.id.not_in(ids))
            ids += db.session.scalars(more.limit(PRODUCT_HITS - len(ids)))
    words = match_words(shown)
    hits = []
    if ids:
        loaded = select(Product).where(Product.id.in_(ids))
        by_id = {product.id: product for product in db.session.scalars(loaded)}
        for product in (by_id[pid] for pid in ids if pid in by_id):
            image = product.image
            hits.append(
                ProductHit(
                    product.id,
                    product.name,
                    product.price,
                    product.slug,
                    image.thumbnail_path if image is not None else None,
                    highlight(product.name, words),
                )
            )
    return hits, words


def _category_hits(catalog: _CatalogSnapshot, words: list[str]) -> list[CategoryHit]:
    found = []
    for category in catalog.categories:
        if category.products and matches_all(category.name, words):
            name = category.name
            found.append(CategoryHit(category.id, name, category.slug, highlight(name, words)))
            if len(found) >= CATEGORY_HITS:
                break
    return found


def suggest(
    q: str,
    limit: int = DEFAULT_LIMIT,
    settled: bool = False,
    *,
    may_expand: Callable[[], bool] | None = None,
) -> SuggestResult:
    """Suggestions, products and categories for what the shopper has typed so far.

    `settled`: the shopper paused or submitted, so the query is meant as it is: its
    model expansions are offered, and asked for if the catalog finds fewer than
    SHOPAI_SUGGEST_EXPAND_BELOW_HITS products, its last word is finished (a catalog
    word, or the beginning of none) and the model was never asked about it.
    `may_expand` (the web layer's per-client budget) is consulted just before asking.
    """
    if not 1 <= limit <= MAX_LIMIT:
        raise SuggestError(f"limit must be between 1 and {MAX_LIMIT}")
    query = normalize_query(q)
    engine = state()
    catalog = engine.catalog()  # also drops cached hits if the catalog changed
    popular = engine.popular()
    words = match_words(query)
    if len(query) < 2 or not words:
        return SuggestResult(query, _popular_suggestions(query, popular, limit), [], [], 0)

    last_complete = q[-1:].isspace() and len(query) < MAX_QUERY_CHARS
    candidates: dict[str, _Candidate] = {}
    _collect(catalog.phrases, words, last_complete, 4 * limit, candidates)
    _collect(popular.phrases, words, last_complete, limit, candidates, popular=True)

    expansion = _expansion(query) if settled else None
    if expansion is not None and expansion.status == ExpansionStatus.DONE:
        for text in expansion.suggestions or []:
            if not isinstance(text, str) or not (shown := normalize_query(text)):
                continue
            key = match_key(shown)
            if key and key not in candidates:
                candidates[key] = _Candidate(key, shown, "ai", 0, 1, key == " ".join(words))

    kept = _verified(list(candidates.values()), limit, popular.blocked)
    query_hits = count_hits(query)
    products, shown_words = _product_hits(query, query_hits, kept)
    requested = False
    if (
        settled
        and expansion is None
        and query_hits < current_app.config["SHOPAI_SUGGEST_EXPAND_BELOW_HITS"]
        and _last_word_complete(catalog.phrases, words[-1])
        and not popular.blocked.hides(query)
        and (may_expand is None or may_expand())
    ):
        requested = _request_expansion(query)
    return SuggestResult(
        query,
        _suggestions(kept, words),
        products,
        _category_hits(catalog, shown_words),
        query_hits,
        requested,
    )


def _last_word_complete(phrases: PhraseIndex, word: str) -> bool:
    """Whether the query's last word looks finished: a catalog word, or the beginning of
    none. The widget settles after a pause, so "kestrel bu" (of "buds") may be a
    shopper still typing; it is not worth a model call."""
    return phrases.has_word(word) or not phrases.has_beginning(word)


def _request_expansion(query: str) -> bool:
    """Hand the query to the model jobs (`shopai.suggest.tasks.request_expansion`,
    which queues at most one job per query). Never raises: suggestions do not depend
    on the model."""
    from .tasks import request_expansion  # here: the jobs module imports the search stack

    try:
        request_expansion(query)
    except Exception:
        log.exception("could not queue the expansion of a query")
        db.session.rollback()
        return False
    return True


# -- what shoppers search and click --------------------------------------------------


@dataclass(frozen=True)
class _Count:
    """One row's worth of counting: searches or clicks of one query, and the visitors
    whose submission of it today counts towards making it popular."""

    query: str
    submitted: int
    clicks: int
    hits: int | None
    visitors: tuple[str, ...] = ()


def _upsert(counts: Sequence[_Count]) -> None:
    """Add each count to its query's row (made if new): one statement for them all,
    since a batch of the search page's counts is written beside requests being served."""
    now = utcnow()
    rows = [
        {
            "query": count.query,
            "submitted": count.submitted,
            "clicks": count.clicks,
            "last_hits": count.hits,
            "first_seen": now,
            "last_seen": now,
        }
        for count in counts
    ]
    dialect = db.engine.dialect.name
    if dialect in ("sqlite", "postgresql"):
        insert = (sqlite if dialect == "sqlite" else postgresql).insert(SearchQuery)
        new = insert.excluded
        added = {
            "submitted": SearchQuery.submitted + new.submitted,
            "clicks": SearchQuery.clicks + new.clicks,
            "last_hits": func.coalesce(new.last_hits, SearchQuery.last_hits),  # clicks: none
            "last_seen": new.last_seen,
        }
        db.session.execute(insert.on_conflict_do_update(index_elements=["query"], set_=added), rows)
        return
    for count, values in zip(counts, rows, strict=True):
        changes: dict[str, Any] = {
            "submitted": SearchQuery.submitted + count.submitted,
            "clicks": SearchQuery.clicks + count.clicks,
            "last_seen": now,
        }
        if count.hits is not None:
            changes["last_hits"] = count.hits
        changed = db.session.execute(
            update(SearchQuery).where(SearchQuery.query == count.query).values(**changes)
        )
        if not getattr(changed, "rowcount", 0):
            db.session.add(SearchQuery(**values))


def _record(*counts: _Count) -> int:
    """Count searches and clicks (and each visitor's submission today) in one
    transaction; if it fails, each row on its own, so one bad row costs only itself.
    How many rows were counted."""
    counts = tuple(count for count in counts if count.query)
    try:
        _upsert(counts)
        _count_visitors(counts)
        db.session.commit()
    except SQLAlchemyError:
        # A statistic is not worth failing the shopper's request for.
        db.session.rollback()
        if len(counts) > 1:
            return sum(_record(count) for count in counts)
        log.warning("could not record a search", exc_info=True)
        return 0
    return len(counts)


def visitor_hash(client: str, day: date) -> str:
    """A keyed hash of a client address and a day: the same visitor counts once a day,
    no address is stored, and without SECRET_KEY the hash tells nothing."""
    key = str(current_app.config["SECRET_KEY"]).encode()
    message = f"{client}\x00{day.isoformat()}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:VISITOR_HASH_CHARS]


def _count_visitors(counts: Sequence[_Count]) -> None:
    """Record that each count's visitors submitted its query today (once a day each)."""
    queries = [count.query for count in counts if count.visitors]
    if not queries:
        return
    found = select(SearchQuery.query, SearchQuery.id).where(SearchQuery.query.in_(queries))
    ids = {query: query_id for query, query_id in db.session.execute(found)}
    day, dialect = utcnow().date(), db.engine.dialect.name
    rows = [
        {"query_id": ids[count.query], "visitor": visitor_hash(client, day), "day": day}
        for count in counts
        if count.query in ids
        for client in count.visitors
    ]
    if rows and dialect in ("sqlite", "postgresql"):
        insert = (sqlite if dialect == "sqlite" else postgresql).insert(SearchVisitor)
        db.session.execute(insert.on_conflict_do_nothing(), rows)
        return
    for values in rows:
        try:
            with db.session.begin_nested():
                db.session.add(SearchVisitor(**values))
        except IntegrityError:
            pass  # counted already today


def record_search(q: str, hits: int, visitor: str | None = None) -> bool:
    """Count a submitted search (never a keystroke) and how many products it found.

    `visitor` (the client address) makes the search count towards becoming popular,
    once per visitor and day, and only if every word of it is a catalog word (see
    `popular_words_known`); without it the search is only counted for the admin page."""
    return record_searches([(q, hits, visitor)]) == 1


def record_searches(searches: Iterable[tuple[str, int, str | None]]) -> int:
    """`record_search` for each (q, hits, visitor), in one commit: how the search page's
    background recorder (`recording.SearchRecorder`) counts a batch. Searches of the same
    query share one row's update (the last one's hits are kept, as one by one). How many
    rows were counted."""
    counts: dict[str, _Count] = {}
    known: dict[str, bool] = {}
    for q, hits, visitor in searches:
        query = normalize_query(q)
        if not query:
            continue
        before = counts.get(query, _Count(query, 0, 0, None))
        visitors = before.visitors
        if visitor and hits > 0 and visitor not in visitors:
            if query not in known:
                known[query] = popular_words_known(query, state().catalog().phrases)
            if known[query]:
                visitors += (visitor,)
        counts[query] = _Count(query, before.submitted + 1, 0, max(0, hits), visitors)
    return _record(*counts.values()) if counts else 0


def record_click(text: str, query: str) -> bool:
    """Count a click on a suggestion, only if the engine offers `text` for `query` now:
    a click on anything else was not on a suggestion, and counting it would let anyone
    stuff the admin's click-through figures (or the popular searches)."""
    shown = normalize_query(text)
    if not shown:
        return False
    offered = {normalize_query(s.text) for s in suggest(query, limit=MAX_LIMIT).suggestions}
    if shown not in offered:
        return False
    return _record(_Count(shown, submitted=0, clicks=1, hits=None)) == 1


# -- the admin page ------------------------------------------------------------------


@dataclass(frozen=True)
class SearchStats:
    query: str
    submitted: int
    last_hits: int | None
    clicks: int
    last_seen: datetime

    @property
    def click_through(self) -> float | None:
        """Clicks on it as a suggestion per submitted search of it."""
        return self.clicks / self.submitted if self.submitted else None


def _stats(query: Any, limit: int) -> list[SearchStats]:
    rows = db.session.scalars(query.limit(limit))
    return [
        SearchStats(row.query, row.submitted, row.last_hits, row.clicks, row.last_seen)
        for row in rows
    ]


def top_searches(limit: int = 50) -> list[SearchStats]:
    return _stats(
        select(SearchQuery)
        .where(SearchQuery.submitted > 0)
        .order_by(SearchQuery.submitted.desc(), SearchQuery.query),
        limit,
    )


def searches_without_results(limit: int = 50) -> list[SearchStats]:
    return _stats(
        select(SearchQuery)
        .where(SearchQuery.submitted > 0, SearchQuery.last_hits == 0)
        .order_by(SearchQuery.submitted.desc(), SearchQuery.query),
        limit,
    )


def most_clicked(limit: int = 50) -> list[SearchStats]:
    return _stats(
        select(SearchQuery)
        .where(SearchQuery.clicks > 0)
        .order_by(SearchQuery.clicks.desc(), SearchQuery.query),
        limit,
    )


@dataclass(frozen=True)
class Totals:
    searches: int  # distinct queries
    submitted: int
    clicks: int
    without_results: int  # distinct queries whose last search found nothing

    @property
    def click_through(self) -> float | None:
        return self.clicks / self.submitted if self.submitted else None


def totals() -> Totals:
    row = db.session.execute(
        select(
            func.count(SearchQuery.id),
            func.coalesce(func.sum(SearchQuery.submitted), 0),
            func.coalesce(func.sum(SearchQuery.clicks), 0),
            func.coalesce(func.sum(case((SearchQuery.last_hits == 0, 1), else_=0)), 0),
        )
    ).one()
    return Totals(*(int(value) for value in row))


def blocked_terms() -> list[BlockedTerm]:
    return list(db.session.scalars(select(BlockedTerm).order_by(BlockedTerm.term)))


def block_term(term: str) -> BlockedTerm:
    """Never suggest texts holding `term` again (see `BlockList` for the matching)."""
    normalized = normalize_query(term)
    if not match_key(normalized):
        raise SuggestError("A blocked term needs at least one letter or digit.")
    if db.session.scalar(select(BlockedTerm).where(BlockedTerm.term == normalized)):
        raise SuggestError(f"“{normalized}” is already blocked.")
    blocked = BlockedTerm(term=normalized)
    db.session.add(blocked)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise SuggestError(f"“{normalized}” is already blocked.") from None
    state().reload_popular()  # the blocklist lives with the popular searches
    return blocked


def unblock_term(term_id: int) -> BlockedTerm | None:
    blocked = db.session.get(BlockedTerm, term_id)
    if blocked is None:
        return None
    db.session.delete(blocked)
    db.session.commit()
    state().reload_popular()
    return blocked
