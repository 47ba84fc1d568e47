"""The order of full-text results: names first, a ranked window per tier, every match once."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import event

from shopai.extensions import db
from shopai.search import ranking
from shopai.search.services import SearchFilters, search_products

from ..factories import make_category, make_product


@pytest.fixture
def speakers(app):
    """Eight products named by the query, created oldest first (equal names, equal
    scores), and two that mention it elsewhere only."""
    audio = make_category("Speakers")
    named = [make_product(f"Fennick Speaker {n}", "49.00", audio, "Portable.") for n in range(8)]
    lamp = make_category("Lamps")
    others = [
        make_product("Glowfin Lamp", "19.00", lamp, "Works with any Fennick speaker."),
        make_product("Glowfin Lamp Mini", "29.00", lamp, "Fennick speaker stand included."),
    ]
    return [p.name for p in named], [p.name for p in others]


def every_page(filters: SearchFilters, per_page: int) -> list[str]:
    seen: list[str] = []
    page = 1
    while True:
        result = search_products(filters, page, per_page, by_meaning=False)
        seen += [p.name for p in result.items]
        if not result.has_next:
            assert len(seen) == result.total
            return seen
        page += 1


def test_names_come_first_then_the_other_matches(speakers):
    named, others = speakers
    found = every_page(SearchFilters(q="fennick speaker"), 20)
    assert found[:8] == named  # equal scores: by id
    assert set(found[8:]) == set(others)


@pytest.mark.parametrize("per_page", [1, 2, 3, 4, 7, 10])
def test_without_filters_each_tier_ranks_its_newest_window_and_lists_the_rest_newest_first(
    speakers, monkeypatch, per_page
):
    named, others = speakers
    monkeypatch.setattr(ranking, "WINDOW", 3)
    found = every_page(SearchFilters(q="fennick speaker"), per_page)
    # The newest three names, ranked; the older five, newest first; then the others
    # (two: within one window).
    assert found[:8] == named[5:] + named[4::-1]
    assert set(found[8:]) == set(others) and len(found) == 10


def test_with_filters_every_match_is_ranked(speakers, monkeypatch):
    named, _others = speakers
    monkeypatch.setattr(ranking, "WINDOW", 3)
    filters = SearchFilters(q="fennick speaker", min_price=Decimal("40"))
    assert every_page(filters, 3) == named


def test_a_first_page_of_names_takes_one_statement(speakers):
    statements: list[str] = []

    def record(_conn, _cursor, statement, *_args):
        if "product_fts" in statement:
            statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        page = search_products(SearchFilters(q="fennick speaker"), 1, 4, by_meaning=False)
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    assert [p.name for p in page.items] == speakers[0][:4] and page.total == 10
    assert len(statements) == 1  # ranked slice, products, categories, images and count


def test_a_query_no_name_holds_still_finds_the_others(speakers):
    assert set(every_page(SearchFilters(q="works with"), 5)) == {"Glowfin Lamp"}
    assert every_page(SearchFilters(q="nothing like it"), 5) == []
