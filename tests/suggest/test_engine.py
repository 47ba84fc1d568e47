"""The suggestion engine without HTTP: matching, ranking, typos, CJK, blocklist, hits."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from shopai.catalog import services as catalog
from shopai.extensions import db
from shopai.jobs import Job
from shopai.search import keyword
from shopai.suggest.models import ProductQuery, QueryExpansion, SearchQuery
from shopai.suggest.services import (
    SuggestError,
    block_term,
    invalidate_suggestions,
    record_search,
    state,
    suggest,
    unblock_term,
)
from shopai.suggest.text import highlight, match_key, normalize_query

from ..factories import make_category, make_product

CATALOG = {
    "Headphones": [
        ("Kestrel K7 Wireless Headphones", "199.00", "Over-ear noise cancelling headphones."),
        ("Kestrel Buds Mini", "59.00", "Tiny true wireless earbuds for running."),
        ("Solvane Halo Wireless Headset", "89.00", "A light headset for calls."),
    ],
    "Laptops": [
        ("Norvik Edu 11 Student Laptop", "399.00", "A light, durable laptop for school work."),
        ("Norvik AirLite 13 Laptop", "999.00", "Thin and light with a full-day battery."),
    ],
    "Networking": [("Stratos Mesh Wi-Fi 6 System", "249.00", "Whole-home mesh networking.")],
    "Computer Accessories": [("Ironleaf 7-in-1 USB-C Hub", "49.00", "HDMI and card reader.")],
    "Lighting": [
        ("Lumo Lamp", "19.00", "A small lamp."),
        ("Lumos Desk Light", "39.00", "An LED desk light."),
        ("Lumos Floor Light", "89.00", "A tall floor light."),
        ("Lumos Strip Light", "29.00", "An LED strip."),
    ],
    "Kitchen": [("Brightwell Café Espresso Machine", "349.00", "Fifteen-bar pump.")],
    "耳机": [("索尼无线降噪耳机 WH-1000XM5", "2499.00", "头戴式 续航30小时。")],
}


@pytest.fixture
def shop(app):
    # Every call looks at the database again (in production: every 2 seconds).
    app.config["SHOPAI_SUGGEST_RECHECK_SECONDS"] = 0.0
    for category_name, products in CATALOG.items():
        category = make_category(category_name)
        for name, price, description in products:
            make_product(name, price, category, description)
    return app


def texts(q: str, **options) -> list[str]:
    return [s.text for s in suggest(q, **options).suggestions]


def submit(q: str, times: int = 3) -> None:
    """`times` submissions, each from a different visitor."""
    hits = keyword.count(None, q)
    for visitor in range(times):
        record_search(q, hits, visitor=f"192.0.2.{visitor}")


# -- the one normalization -------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("  Wireless\tHEADPHONES  ", "wireless headphones"),
        ("\uff57\uff49\uff52\uff45\uff4c\uff45\uff53\uff53", "wireless"),  # full-width
        ("Straße", "strasse"),
        ("usb\u200b-c\u202e hub", "usb-c hub"),  # zero-width and direction controls
        ("line\nbreak\x00", "line break"),
        ("x" * 150, "x" * 100),
        ("a" * 99 + " b", "a" * 99),  # capped, then no trailing blank
    ],
)
def test_normalize_query(raw, normalized):
    assert normalize_query(raw) == normalized


def test_match_keys_ignore_joiners_and_latin_accents():
    assert match_key("usb-c hub") == match_key("usb c hub") == "usb c hub"
    assert match_key("café") == "cafe"
    assert match_key("索尼无线降噪耳机 wh-1000xm5") == "索尼无线降噪耳机 wh 1000xm5"


# -- matching --------------------------------------------------------------------------


def test_earlier_words_complete_and_the_last_is_a_prefix(shop):
    found = texts("wireless hea")
    assert "wireless headphones" in found and "wireless headset" in found
    assert all(text.startswith("wireless hea") for text in found)
    assert texts("wire hea") == []  # "wire" was finished with a space: not "wireless"


def test_every_word_is_matched_in_any_script_spelling(shop):
    assert "usb-c hub" in texts("usb c h")
    assert "brightwell café espresso machine" in texts("brightwell cafe esp")


def test_varied_completions_come_before_longer_versions_of_one(shop):
    found = texts("wireless", limit=3)
    assert found[0] == "wireless"
    assert {"wireless headphones", "wireless headset"} <= set(found)


def test_exact_first_then_popular_then_by_hits(shop):
    submit("lumos strip light")
    found = suggest("lumo").suggestions
    assert [s.text for s in found[:2]] == ["lumo", "lumos strip light"]
    assert [s.source for s in found[:2]] == ["catalog", "popular"]
    rest = [s.hits for s in found[2:] if s.source == "catalog"]
    assert rest == sorted(rest, reverse=True)


def test_a_trailing_space_finishes_the_last_word(shop):
    assert "lumos desk light" in texts("lumo")
    finished = texts("lumo ")
    assert "lumo lamp" in finished and not [t for t in finished if t.startswith("lumos")]


# -- typos -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("headphomes", "headphones"),  # substitution, whole word
        ("wirelss", "wireless"),  # deletion
        ("norvk", "norvik"),  # five letters, still being typed
        ("kestrel k7 wireles", "kestrel k7 wireless"),  # the last word of several
        ("solvane hallo", "solvane halo"),  # an earlier word, insertion
        ("haedphones", "headphones"),  # two neighbouring letters swapped: one slip
    ],
)
def test_one_typo_is_forgiven_in_words_of_five_letters(shop, typed, expected):
    found = suggest(typed).suggestions
    assert any(s.text.startswith(expected) for s in found)
    assert all(s.hits > 0 for s in found)


@pytest.mark.parametrize("typed", ["mesj", "lamo", "hedphomes", "xyzzy"])
def test_no_typo_tolerance_under_five_letters_nor_beyond_one_edit(shop, typed):
    assert texts(typed) == []


def test_a_typo_shows_the_corrected_products_and_highlights_the_word(shop):
    result = suggest("headphomes")
    first = result.suggestions[0]
    assert first.text == "headphones" and first.highlight == [[0, 10]]
    assert result.query_hits == 0
    # The search also matches category names: the category's products follow.
    assert result.products[0].name == "Kestrel K7 Wireless Headphones"
    assert result.products[0].highlight == [[20, 30]]
    assert [c.name for c in result.categories] == ["Headphones"]


# -- highlights ------------------------------------------------------------------------


def test_highlights_are_offsets_of_what_matched(shop):
    result = suggest("wireless hea")
    by_text = {s.text: s.highlight for s in result.suggestions}
    assert by_text["wireless headphones"] == [[0, 8], [9, 12]]
    product = next(p for p in result.products if p.name == "Kestrel K7 Wireless Headphones")
    assert product.highlight == [[11, 19], [20, 23]]
    assert "Kestrel K7 Wireless Headphones"[11:19] == "Wireless"
    categories = suggest("hea").categories
    assert [(c.name, c.highlight) for c in categories] == [("Headphones", [[0, 3]])]


def test_highlight_function():
    assert highlight("USB-C Hub", ["usb", "c", "h"]) == [[0, 3], [4, 5], [6, 7]]
    assert highlight("Brightwell Café", ["cafe"]) == [[11, 15]]
    assert highlight("索尼无线降噪耳机", ["降噪"]) == [[4, 6]]
    assert highlight("Headphones", ["headphomes"]) == []  # typos only where corrected
    assert highlight("Headphones", ["headphomes"], typos=True) == [[0, 10]]
    assert highlight("ﬁber cable", ["fi"]) == [[0, 4]]  # NFKC changes its length: whole word
    assert highlight("Lumo Lamp", ["lamp", "lamp"]) == [[5, 9]]  # one word serves one


# -- Chinese ---------------------------------------------------------------------------


def test_chinese_words_match_inside_longer_runs(shop):
    result = suggest("降噪")
    suggestion = result.suggestions[0]
    assert suggestion.text.startswith("索尼无线降噪耳机")
    assert suggestion.highlight[0] == [4, 6]
    assert [p.name for p in result.products] == ["索尼无线降噪耳机 WH-1000XM5"]


def test_chinese_prefixes_and_mixed_queries(shop):
    assert texts("索尼无")[0].startswith("索尼无线降噪耳机")
    assert "索尼无线降噪耳机 wh-1000xm5" in texts("耳机 wh")
    assert texts("降") == []  # one character: popular searches only (none yet)


# -- what is never suggested -----------------------------------------------------------


def test_every_suggestion_finds_products(shop):
    db.session.add(ProductQuery(product_id=1, text="bokonon", model="tiny"))
    db.session.commit()
    invalidate_suggestions()
    for q in ["k", "ke", "kes", "wi", "wireless h", "lumos", "lap", "bok", "mesh w", "no"]:
        for s in suggest(q, limit=20).suggestions:
            assert s.hits == keyword.count(None, s.text) > 0
            assert s.text != "bokonon"


def test_blocked_terms_are_never_suggested(shop):
    submit("wireless headset")
    assert "wireless headset" in texts("wireless")
    blocked = block_term("Wireless HEADSET")
    assert blocked.term == "wireless headset"
    found = texts("wireless", limit=20) + texts("solvane", limit=20) + texts("", limit=20)
    assert not [text for text in found if "wireless headset" in text]
    assert "wireless headphones" in found  # a word of the term alone is not blocked
    unblock_term(blocked.id)
    assert "wireless headset" in texts("wireless")


def test_blocked_terms_match_words_or_cjk_anywhere(shop):
    block_term("lamp")
    assert "lumo lamp" not in texts("lumo", limit=20)
    assert "lumos desk light" in texts("lumo", limit=20)
    block_term("降噪")
    assert texts("索尼") == []
    with pytest.raises(SuggestError):
        block_term("LAMP")  # already blocked: same after normalization
    with pytest.raises(SuggestError):
        block_term("  !!  ")


# -- popular searches ------------------------------------------------------------------


def test_empty_and_one_character_queries_get_popular_searches(shop):
    submit("usb-c hub", 4)
    submit("kestrel buds", 3)
    submit("lumos", 2)  # not yet popular (3 submissions needed)
    submit("zebra", 5)  # found nothing: never suggested
    result = suggest("")
    assert [(s.text, s.source) for s in result.suggestions] == [
        ("usb-c hub", "popular"),
        ("kestrel buds", "popular"),
    ]
    assert result.products == [] and result.categories == []
    assert [s.text for s in suggest("k").suggestions] == ["kestrel buds"]
    assert suggest("k").suggestions[0].highlight == [[0, 1]]


def test_a_search_is_popular_only_once_enough_distinct_visitors_submitted_it(shop):
    hits = keyword.count(None, "kestrel buds")
    for _ in range(5):
        record_search("kestrel buds", hits, visitor="192.0.2.1")  # one visitor, 5 times
    record_search("kestrel buds", hits)  # no visitor known: never counts
    assert "kestrel buds" not in texts("")
    record_search("kestrel buds", hits, visitor="192.0.2.2")
    assert "kestrel buds" not in texts("")
    record_search("kestrel buds", hits, visitor="192.0.2.3")
    assert texts("") == ["kestrel buds"]


@pytest.mark.parametrize(
    "planted",
    [
        "k7 " * 12 + "buy at evil.example",  # hits from the first 12 words alone
        "kestrel buy at evil example",  # words the catalog does not have
        "k\u0435strel buds",  # a Cyrillic e (U+0435)
        "kestrel " * 13,  # more than 12 words
    ],
)
def test_only_catalog_words_can_become_popular(shop, planted):
    submit(planted, 5)
    assert texts("") == [] and texts("k") == []
    assert not [t for t in texts("kestrel", limit=20) if "evil" in t or "\u0435" in t]


def test_popular_searches_lead_their_prefix(shop):
    submit("kestrel buds mini")
    assert texts("kes")[0] == "kestrel buds mini"


# -- model-made text -------------------------------------------------------------------


def test_model_made_product_queries_are_suggested_as_ai(shop):
    db.session.add(ProductQuery(product_id=2, text="running earbuds", model="tiny"))
    db.session.commit()
    invalidate_suggestions()
    found = {s.text: s for s in suggest("runn").suggestions}
    assert found["running earbuds"].source == "ai" and found["running earbuds"].hits == 1


def test_expansions_are_offered_for_a_settled_query(shop):
    db.session.add(
        QueryExpansion(
            query="earphones for running",
            status="done",
            suggestions=["kestrel buds", "bokonon", "wireless earbuds"],
        )
    )
    db.session.commit()
    assert texts("earphones for running") == []
    settled = suggest("Earphones  for running", settled=True).suggestions
    assert {(s.text, s.source) for s in settled} == {
        ("kestrel buds", "ai"),
        ("wireless earbuds", "ai"),
    }


# -- asking the model (off the keystroke path) ------------------------------------------


def expansion_jobs() -> list[Job]:
    return [job for job in db.session.scalars(select(Job)) if "expansion" in job.kind]


def test_a_settled_query_the_catalog_knows_little_about_is_handed_to_the_model(shop):
    shop.config["SHOPAI_SUGGEST_EXPAND_BELOW_HITS"] = 2
    assert not suggest("earphones for running").expansion_requested  # typing: never
    assert expansion_jobs() == []

    assert suggest("earphones for running", settled=True).expansion_requested
    jobs = expansion_jobs()
    assert len(jobs) == 1 and "earphones for running" in str(jobs[0].payload)
    assert not suggest("earphones for running", settled=True).expansion_requested  # once
    assert not suggest("kestrel", settled=True).expansion_requested  # 2 hits: known
    assert not suggest("norvik edu", settled=True, may_expand=lambda: False).expansion_requested
    assert len(expansion_jobs()) == 1
    assert db.session.scalar(select(func.count()).select_from(SearchQuery)) == 0


def test_a_half_typed_last_word_is_never_handed_to_the_model(shop):
    shop.config["SHOPAI_SUGGEST_EXPAND_BELOW_HITS"] = 5
    assert not suggest("kestrel bu", settled=True).expansion_requested  # "buds" unfinished
    assert not suggest("gift for lum", settled=True).expansion_requested  # "lumo", "lumos"
    assert expansion_jobs() == []
    assert suggest("gift for lumos", settled=True).expansion_requested  # a catalog word
    assert suggest("gift for dad", settled=True).expansion_requested  # begins no word
    assert len(expansion_jobs()) == 2


# -- the catalog changing --------------------------------------------------------------


def test_catalog_changes_show_at_once(shop):
    assert texts("zeph") == []
    product = make_product("Zephyr Air Purifier", category=make_category("Air"))
    assert "zephyr air purifier" in texts("zeph")
    catalog.update_product(
        product, name="Zephyrine Purifier", price=product.price, category=product.category
    )
    assert "zephyr air purifier" not in texts("zeph") and "zephyrine" in texts("zeph")
    catalog.delete_product(product)
    assert texts("zeph") == []


def test_rebuilds_run_in_the_background_serving_the_current_snapshot(shop):
    shop.config["SHOPAI_SUGGEST_BUILD_INLINE"] = False
    assert texts("zeph") == []  # the first build (inline)
    make_product("Zephyr Air Purifier", category=make_category("Air"))
    assert texts("zeph") == []  # served from the snapshot while the next one is built
    engine = state()
    engine.wait_for_rebuild(timeout=30)
    assert "zephyr air purifier" in texts("zeph")


def test_blocking_a_term_does_not_rebuild_the_catalog_index(shop):
    before = state().catalog()
    blocked = block_term("lamp")
    assert "lumo lamp" not in texts("lumo", limit=20)
    unblock_term(blocked.id)
    assert "lumo lamp" in texts("lumo", limit=20)
    assert state().catalog() is before


def test_no_module_wide_cache_keeps_stale_names():
    from shopai.suggest import index

    assert not hasattr(index.name_phrases, "cache_info")


def test_an_empty_shop_suggests_nothing_and_fails_nothing(app):
    for q in ["", "k", "kestrel", "降噪", "headphomes", "!!", "a b c"]:
        result = suggest(q, settled=True, may_expand=lambda: False)
        assert result.suggestions == [] and result.products == [] and result.categories == []


def test_limits(shop):
    assert len(suggest("l", limit=1).suggestions) <= 1
    assert len(texts("lumo", limit=2)) == 2
    for bad in (0, 21):
        with pytest.raises(SuggestError):
            suggest("lumo", limit=bad)
