"""Suggestion endpoints: the JSON API the search box calls, click beacons, the cookbook's
`/product-search-gpt` page and POST, and the admin page of searches and blocked terms."""

from __future__ import annotations

from typing import Any

from flask import current_app, flash, jsonify, redirect, render_template, request, url_for
from werkzeug.exceptions import BadRequest, NotFound
from werkzeug.wrappers import Response

from ..auth.decorators import admin_required
from ..errors import json_error
from ..extensions import limiter
from ..web import within_rate
from . import bp
from .forms import BlockTermForm, BookQueryForm, RemoveTermForm, SuggestArgs
from .services import (
    DEFAULT_LIMIT,
    SOURCES,
    SuggestError,
    SuggestResult,
    block_term,
    blocked_terms,
    most_clicked,
    record_click,
    searches_without_results,
    suggest,
    top_searches,
    totals,
    unblock_term,
)
from .text import MAX_QUERY_CHARS, normalize_query

# Browsers may reuse an answer briefly (the shopper backspacing); it is per visitor
# only in the sense that nothing in it is personal, so no shared cache keeps it.
CACHE_CONTROL = "private, max-age=10"
EXPAND_SCOPE = "suggest-expand"
EXPAND_GLOBAL_SCOPE = "suggest-expand-all"


def _suggest_limit() -> str:
    return current_app.config["SHOPAI_SUGGEST_RATE_LIMIT"]


def _expansion_allowed() -> bool:
    """The stricter budgets for queries handed to the model (each may cost a model
    call): per client (the limiter's key), then across all clients. Each check is one
    atomic `hit`. Over budget, the shopper still gets every catalog suggestion; the
    query is just not sent to the model."""
    client = limiter._key_func()  # the key every limit of the app uses
    return within_rate("SHOPAI_SUGGEST_EXPANSION_RATE_LIMIT", EXPAND_SCOPE, client) and within_rate(
        "SHOPAI_SUGGEST_EXPANSION_GLOBAL_LIMIT", EXPAND_GLOBAL_SCOPE, "all"
    )


def _from_the_widget() -> bool:
    """Whether this request may come from our own pages, so a settled query may cost a
    model call. A browser tells where a request comes from (Fetch Metadata): only
    `same-origin` counts, so another site's <img src=/api/suggest?...&settled=1>
    (`cross-site`) asks nothing. Without Fetch Metadata (older browsers, other
    clients) the request must carry `X-Requested-With: fetch`, which the widget sends
    and which no <img>, link or form can."""
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None:
        return site == "same-origin"
    return request.headers.get("X-Requested-With") == "fetch"


def _never() -> bool:
    return False


def result_dict(result: SuggestResult, typed: str) -> dict[str, Any]:
    """The JSON of a suggestion answer. Highlights are [start, end) offsets in Unicode
    code points into the text or name beside them: render them as text, never HTML."""
    return {
        "query": typed,
        "normalized": result.query,
        "suggestions": [
            {"text": s.text, "source": s.source, "hits": s.hits, "highlight": s.highlight}
            for s in result.suggestions
        ],
        "products": [
            {
                "id": p.id,
                "name": p.name,
                "price": str(p.price),
                "url": url_for("catalog.product", key=p.slug),
                "thumbnail_url": url_for("images.media", filename=p.thumbnail_path)
                if p.thumbnail_path
                else None,
                "highlight": p.highlight,
            }
            for p in result.products
        ],
        "categories": [
            {
                "id": c.id,
                "name": c.name,
                "url": url_for("catalog.category", key=c.slug),
                "highlight": c.highlight,
            }
            for c in result.categories
        ],
    }


@bp.get("/api/suggest")
@limiter.limit(_suggest_limit)
def api_suggest() -> Response:
    form = SuggestArgs(formdata=request.args)
    if not form.validate():
        return json_error(400, "Bad Request", "Invalid parameters.", fields=form.errors)
    typed = form.q.data or ""
    result = suggest(
        typed,
        form.limit.data or DEFAULT_LIMIT,
        settled=bool(form.settled.data),
        # settled=1 is a GET: it may only cost a model call when our own page sends it.
        may_expand=_expansion_allowed if _from_the_widget() else _never,
    )
    response = jsonify(result_dict(result, typed))
    response.headers["Cache-Control"] = CACHE_CONTROL
    return response


def _click_errors(body: Any) -> dict[str, list[str]]:
    if not isinstance(body, dict):
        return {"body": ['Send a JSON object: {"query": ..., "text": ..., "source": ...}.']}
    errors: dict[str, list[str]] = {}
    for name in ("query", "text", "source"):
        value = body.get(name, "" if name == "query" else None)
        if not isinstance(value, str):
            errors[name] = ["This field is required and must be a string."]
        elif len(value) > MAX_QUERY_CHARS:
            errors[name] = [f"At most {MAX_QUERY_CHARS} characters."]
    if "text" not in errors and not normalize_query(body["text"]):
        errors["text"] = ["The suggestion's text is empty."]
    if "source" not in errors and body["source"] not in SOURCES:
        errors["source"] = [f"One of {', '.join(SOURCES)}."]
    return errors


@bp.post("/api/suggest/clicks")
@limiter.limit(_suggest_limit)
def api_click() -> Response:
    """A shopper picked a suggestion (send X-CSRFToken). Only the picked text is
    counted; the half-typed `query` it was picked from is never stored."""
    body = request.get_json(silent=True)
    if errors := _click_errors(body):
        return json_error(400, "Bad Request", "Invalid click.", fields=errors)
    assert isinstance(body, dict)  # checked above
    record_click(body["text"], body.get("query", ""))
    return current_app.response_class(status=204)


@bp.get("/product-search-gpt")
def book_page() -> str:
    """The cookbook's demo page: a search box the suggestion widget attaches to."""
    return render_template("suggest/product_search_gpt.html", max_query=MAX_QUERY_CHARS)


@bp.post("/product-search-gpt")
@limiter.limit(_suggest_limit)
def book_suggestions() -> Response:
    """The cookbook's POST (`query` form field) answered by the suggestion engine: a
    JSON list of suggested searches, each one finding products.

    Answered as a keystroke (unsettled) and never recorded: the cookbook's client posts
    on every keystroke, so a call is not a submitted search. Recording it would store
    half-typed prefixes as searches (and let any script make texts popular), and
    settling it would hand every prefix to the model."""
    form = BookQueryForm()
    if not form.validate():
        return json_error(400, "Bad Request", "Invalid query.", fields=form.errors)
    result = suggest(form.query.data or "")
    return jsonify([suggestion.text for suggestion in result.suggestions])


def _admin_page(form: BlockTermForm, status: int = 200) -> tuple[str, int]:
    html = render_template(
        "suggest/admin.html",
        top=top_searches(),
        empty=searches_without_results(),
        clicked=most_clicked(),
        totals=totals(),
        blocked=blocked_terms(),
        form=form,
    )
    return html, status


@bp.get("/admin/suggestions")
@admin_required
def admin_page() -> tuple[str, int]:
    return _admin_page(BlockTermForm())


@bp.post("/admin/suggestions/blocked")
@admin_required
def block() -> Response | tuple[str, int]:
    form = BlockTermForm()
    if form.validate_on_submit():
        try:
            term = block_term(form.term.data or "")
        except SuggestError as exc:
            form.term.errors = [*form.term.errors, str(exc)]
        else:
            flash(f"“{term.term}” will not be suggested any more.", "success")
            return redirect(url_for("suggest.admin_page"))
    return _admin_page(form, 400)


@bp.post("/admin/suggestions/blocked/<id:term_id>/delete")
@admin_required
def unblock(term_id: int) -> Response:
    if not RemoveTermForm().validate_on_submit():
        raise BadRequest("The form expired; reload the page and try again.")
    term = unblock_term(term_id)
    if term is None:
        raise NotFound()
    flash(f"“{term.term}” may be suggested again.", "success")
    return redirect(url_for("suggest.admin_page"))
