"""Each turn is grounded in a catalog search: constraints from the question, meaning too."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

from shopai.assistant import retrieval
from shopai.assistant.retrieval import parse_constraints, retrieve
from shopai.catalog.models import Product
from shopai.extensions import db
from shopai.search.embeddings import refresh_embeddings
from shopai.search.services import SearchFilters, best_ids

from ..factories import make_category, make_product


@pytest.mark.parametrize(
    ("question", "low", "high"),
    [
        ("headphones under $500", None, Decimal(500)),
        ("a laptop below 1,000 dollars", None, Decimal(1000)),
        ("something over $100", Decimal(100), None),
        ("between $100 and $300 please", Decimal(100), Decimal(300)),
        ("speakers $50-$80", Decimal(50), Decimal(80)),
        ("500元以下的耳机", None, Decimal(500)),
        ("不超过300元的音箱", None, Decimal(300)),
        ("耳机 1000元以上", Decimal(1000), None),
        ("a laptop under 1.5k", None, Decimal(1500)),
        ("the WH-1000XM5 headphones", None, None),
        ("headphones under USD 200", None, Decimal(200)),
        ("from $300", Decimal(300), None),
        # sizes, years and model numbers are not prices
        ("headphones from 2024", None, None),
        ("iPhone 14-15 case", None, None),
        ("TV over 55 inches under $900", None, Decimal(900)),
        ("SSD up to 2TB", None, None),
        ("a battery over 20000mAh", None, None),
    ],
)
def test_price_limits_are_read_from_the_question(shop, question, low, high):
    constraints, _ = parse_constraints(question)
    assert (constraints.min_price, constraints.max_price) == (low, high)


@pytest.mark.parametrize(
    ("question", "category"),
    [
        ("cheap headphones", "Headphones"),
        ("便宜的耳机", "Headphones"),
        ("a laptop for college", "Laptops"),
        ("笔记本电脑", "Laptops"),
        ("anything nice", None),
    ],
)
def test_a_category_is_read_from_the_question(shop, question, category):
    constraints, _ = parse_constraints(question)
    assert (constraints.category.name if constraints.category else None) == category


def test_question_words_leave_the_search_words(shop):
    _, words = parse_constraints("Can you recommend some cheap headphones under $100?")
    assert words == "headphones"


def names(question: str, earlier: str | None = None) -> list[str]:
    return [p.name for p in retrieve(question, earlier).products]


def test_retrieval_finds_by_meaning(shop):
    assert names("something to listen to music on the train")[0].startswith("Kestrel")


def test_retrieval_applies_the_price_limit(shop):
    assert names("headphones under $100") == ["Kestrel Buds Mini"]


def test_cheap_in_chinese_orders_the_category_by_price(shop):
    assert names("便宜的耳机") == ["Kestrel Buds Mini", "Kestrel K7 Wireless Headphones"]


def test_a_follow_up_is_searched_with_the_previous_question(shop):
    assert names("any cheaper ones under $500?", earlier="a laptop for college") == [
        "Norvik Edu 11 Student Laptop"
    ]


def test_a_chinese_question_finds_an_english_catalog_through_the_glossary(shop):
    assert names("推荐一款降噪耳机")[0] == "Kestrel K7 Wireless Headphones"


def test_a_question_naming_a_product_finds_it_outside_the_category_its_words_suggest(shop):
    make_product("Shady Earbuds", "15.00", make_category("Audio"), "Great earbuds.")
    refresh_embeddings()
    found = retrieve("shady earbuds")
    assert found.constraints.category is None  # "earbuds" suggested Headphones
    assert found.products[0].name == "Shady Earbuds"


def test_a_named_product_whose_name_holds_a_word_inside_a_longer_one_is_found(shop):
    """ "watch" is inside "Smartwatch": the name still holds every word of the question,
    so it is searched for outside the watches the words suggest."""
    make_product("Orbit S2 Smartwatch", "199.00", make_category("Smartwatches & Wearables"))
    make_product("Pixel Smartwatch Strap", "29.00", make_category("Accessories"), "A strap.")
    refresh_embeddings()
    found = retrieve("pixel watch strap")
    assert found.products[0].name == "Pixel Smartwatch Strap"


def test_a_product_deleted_since_the_vectors_were_read_leaves_no_gap(shop, monkeypatch):
    for n in range(retrieval.CANDIDATES):
        make_product(f"Kestrel Spare Headphones {n}", "49.00", make_category(f"Spares {n}"))
    ranked = [p.id for p in db.session.scalars(select(Product).order_by(Product.id.desc()))]
    assert len(ranked) > retrieval.CANDIDATES
    gone = max(ranked) + 1000  # as a stale vector index would still rank it
    monkeypatch.setattr(retrieval, "best_ids", lambda filters, limit: [gone, *ranked])
    found = retrieve("headphones")
    assert [p.id for p in found.products] == ranked[: retrieval.CANDIDATES]


def test_a_question_with_a_category_and_no_product_name_is_searched_once(shop, monkeypatch):
    searched: list[SearchFilters] = []

    def best_ids_spy(filters: SearchFilters, limit: int) -> list[int]:
        searched.append(filters)
        return best_ids(filters, limit)

    monkeypatch.setattr(retrieval, "best_ids", best_ids_spy)
    assert names("cheap earbuds for running")[0] == "Kestrel Buds Mini"
    assert [f.category.name if f.category else None for f in searched] == ["Headphones"]
