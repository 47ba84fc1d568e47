"""Search suggestions (issue 8): the nav search box as an ARIA combobox, by keyboard."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import url_for
from playwright.sync_api import Browser, Page, Request, Route, expect
from sqlalchemy import select

from shopai.extensions import db
from shopai.suggest.models import ProductQuery, SearchQuery
from shopai.suggest.text import normalize_query

from ..factories import make_category, make_product
from ..jobs.conftest import wait_for

pytestmark = pytest.mark.browser


def combobox(page: Page):
    return page.get_by_role("combobox", name="Search products")


def focus_search_by_keyboard(page: Page) -> None:
    """Tab from the top of the page until the nav search box has the focus."""
    for _ in range(12):
        page.keyboard.press("Tab")
        if page.evaluate("() => document.activeElement?.id") == "nav-search":
            return
    pytest.fail("Tab never reached the nav search box")


def active_option(page: Page):
    listbox = page.get_by_role("listbox", name="Search suggestions")
    option_id = combobox(page).get_attribute("aria-activedescendant")
    assert option_id, "no active option"
    return listbox.locator(f"#{option_id}")


# ---------------------------------------------------------------------------------------
# The widget against a scripted API: exact offsets, prices and groups, whatever the
# server-side ranking does.


class ScriptedApi:
    """Answers GET /api/suggest with `answer`; can hold back the settled=1 request."""

    def __init__(self, answer: dict) -> None:
        self.answer = answer
        self.requests: list[Request] = []
        self.hold_settled = False
        self.held: list[Route] = []

    def suggest(self, route: Route) -> None:
        self.requests.append(route.request)
        if self.hold_settled and "settled=1" in route.request.url:
            self.held.append(route)
        else:
            self.reply(route, self.answer)

    def clicks(self, route: Route) -> None:
        self.requests.append(route.request)
        route.fulfill(status=204)

    @staticmethod
    def reply(route: Route, answer: dict) -> None:
        route.fulfill(status=200, content_type="application/json", body=json.dumps(answer))

    def settled_queries(self) -> list[str]:
        queries = [parse_qs(urlsplit(r.url).query) for r in self.requests if r.method == "GET"]
        return [q["q"][0] for q in queries if q.get("settled") == ["1"]]


@pytest.fixture
def scripted_api(page: Page, app) -> Iterator[ScriptedApi]:
    headphones = make_category("Headphones")
    product = make_product("Kestrel K7 Wireless Headphones", "1299.00", headphones)
    with app.test_request_context():
        product_url = url_for("catalog.product", key=product.slug)
        category_url = url_for("catalog.category", key=headphones.slug)
    api = ScriptedApi(
        {
            "query": "kes",
            "suggestions": [
                {
                    "text": "kestrel headphones",
                    "source": "catalog",
                    "hits": 1,
                    "highlight": [[0, 3]],
                },
                # Offsets count code points: the emoji is one, though two UTF-16 units.
                {"text": "🎧 kestrel <b>k7</b>", "source": "ai", "hits": 1, "highlight": [[2, 5]]},
            ],
            "products": [
                {
                    "id": product.id,
                    "name": product.name,
                    "price": "1299.00",
                    "url": product_url,
                    "thumbnail_url": None,
                    "highlight": [[0, 3]],
                }
            ],
            "categories": [
                {"id": headphones.id, "name": "Headphones", "url": category_url, "highlight": []}
            ],
        }
    )
    page.route(re.compile(r"/api/suggest\?"), api.suggest)
    page.route(re.compile(r"/api/suggest/clicks$"), api.clicks)
    yield api


def test_options_follow_the_contract(page: Page, scripted_api: ScriptedApi):
    page.goto("/")
    box = combobox(page)
    expect(box).to_have_attribute("aria-expanded", "false")
    box.focus()
    with page.expect_request(lambda r: "settled=1" in r.url):  # once the shopper pauses
        page.keyboard.type("kes")
    listbox = page.get_by_role("listbox", name="Search suggestions")
    expect(box).to_have_attribute("aria-expanded", "true")
    expect(listbox).to_be_visible()
    expect(box).to_have_attribute("aria-controls", listbox.get_attribute("id") or "")

    suggestions = listbox.get_by_role("group", name="Suggestions").get_by_role("option")
    expect(suggestions).to_have_text(["kestrel headphones", "🎧 kestrel <b>k7</b>"])
    expect(suggestions.nth(0).locator("mark")).to_have_text("kes")
    expect(suggestions.nth(1).locator("mark")).to_have_text("kes")
    expect(suggestions.nth(1).locator("b")).to_have_count(0)
    products = listbox.get_by_role("group", name="Products").get_by_role("option")
    expect(products).to_have_count(1)
    expect(products.locator(".suggest-name")).to_have_text("Kestrel K7 Wireless Headphones")
    expect(products.locator(".suggest-price")).to_have_text("$1,299.00")
    expect(listbox.get_by_role("group", name="Categories").get_by_role("option")).to_have_text(
        ["Headphones"]
    )
    expect(page.locator("#nav-search-live")).to_have_text(
        "2 suggestions, 1 product, 1 category. Use the arrow keys to choose."
    )

    # Up from nothing wraps to the last option; down from the last wraps to the first.
    page.keyboard.press("ArrowUp")
    expect(active_option(page)).to_have_text("Headphones")
    page.keyboard.press("ArrowDown")
    expect(active_option(page)).to_have_text("kestrel headphones")
    expect(active_option(page)).to_have_attribute("aria-selected", "true")

    # A product goes to its own page, by mouse too.
    products.click()
    expect(page).to_have_url(re.compile(r"/product/kestrel-k7"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Kestrel K7 Wireless Headphones")
    # Products are not searches: no click is recorded for them.
    assert [r for r in scripted_api.requests if r.method == "POST"] == []
    assert scripted_api.settled_queries() == ["kes"]


def test_a_late_answer_leaves_a_closed_box_closed(page: Page, scripted_api: ScriptedApi):
    scripted_api.hold_settled = True
    page.goto("/")
    box = combobox(page)
    box.focus()
    with page.expect_request(lambda r: "settled=1" in r.url):
        page.keyboard.type("kes")
        expect(box).to_have_attribute("aria-expanded", "true")
        page.keyboard.press("Escape")
        expect(box).to_have_attribute("aria-expanded", "false")
    listbox = page.get_by_role("listbox", name="Search suggestions", include_hidden=True)
    expect(listbox).to_be_hidden()
    expect(box).to_have_value("kes")
    for _ in range(100):  # round trips to the browser let the route handler run
        if scripted_api.held:
            break
        page.evaluate("() => 0")
    later = dict(scripted_api.answer, products=[], categories=[])
    later["suggestions"] = [
        {"text": f"kestrel late {n}", "source": "popular", "hits": 1, "highlight": [[0, 3]]}
        for n in range(3)
    ]
    scripted_api.reply(scripted_api.held.pop(), later)

    expect(listbox.get_by_role("option", include_hidden=True)).to_have_text(
        ["kestrel late 0", "kestrel late 1", "kestrel late 2"]
    )
    expect(box).to_have_attribute("aria-expanded", "false")
    expect(listbox).to_be_hidden()
    # The arrow keys bring back what is there.
    page.keyboard.press("ArrowDown")
    expect(box).to_have_attribute("aria-expanded", "true")
    expect(active_option(page)).to_have_text("kestrel late 0")


# ---------------------------------------------------------------------------------------
# The widget against the real API.


@pytest.fixture
def shop(app):
    headphones = make_category("Headphones")
    make_product("Kestrel K7 Wireless Headphones", "199.00", headphones)
    make_product("Kestrel K9 Studio Headphones", "349.00", headphones)
    make_product("Osprey Buds Pro", "129.00", headphones)
    return headphones


def test_keyboard_only_shopper_picks_a_suggestion(page: Page, shop):
    page.goto("/")
    focus_search_by_keyboard(page)
    box = combobox(page)
    with page.expect_request(lambda r: "settled=1" in r.url):
        page.keyboard.type("kestrel")
    listbox = page.get_by_role("listbox", name="Search suggestions")
    expect(box).to_have_attribute("aria-expanded", "true")
    expect(
        listbox.get_by_role("group", name="Suggestions").get_by_role("option").first
    ).to_be_visible()
    expect(page.locator("#nav-search-live")).to_contain_text("suggestion")

    # Suggestions come first; the active option follows the arrows and wraps both ways.
    options = listbox.get_by_role("option")
    page.keyboard.press("ArrowDown")
    expect(box).to_have_attribute("aria-activedescendant", "nav-search-option-0")
    count = options.count()  # the options stay still while the shopper chooses
    assert count >= 3, "expected suggestions and both Kestrel products"
    page.keyboard.press("ArrowDown")
    expect(box).to_have_attribute("aria-activedescendant", "nav-search-option-1")
    page.keyboard.press("ArrowUp")
    expect(box).to_have_attribute("aria-activedescendant", "nav-search-option-0")
    page.keyboard.press("ArrowUp")
    expect(box).to_have_attribute("aria-activedescendant", f"nav-search-option-{count - 1}")
    page.keyboard.press("ArrowDown")
    expect(box).to_have_attribute("aria-activedescendant", "nav-search-option-0")
    chosen = active_option(page)
    expect(chosen).to_have_attribute("aria-selected", "true")
    expect(listbox.locator('[aria-selected="true"]')).to_have_count(1)
    text = chosen.text_content() or ""
    source = chosen.get_attribute("data-source")

    with page.expect_request(lambda r: r.url.endswith("/api/suggest/clicks")) as click:
        page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/search\?q="))
    assert parse_qs(urlsplit(page.url).query) == {"q": [text]}
    expect(combobox(page)).to_have_value(text)
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Results for “{text}”")
    assert click.value.method == "POST"
    assert click.value.post_data_json == {"query": "kestrel", "text": text, "source": source}
    assert click.value.all_headers().get("x-csrftoken")

    # The click outlives the page it left (keepalive), so its response may reach no page
    # Playwright still watches: the click is checked where it lands.
    def recorded() -> SearchQuery | None:
        db.session.rollback()  # see the server's commit
        row = db.session.scalar(select(SearchQuery).where(SearchQuery.query == text))
        return row if row is not None and row.clicks else None

    assert wait_for(recorded, "the click to be recorded").clicks == 1


def test_escape_closes_then_clears_and_enter_submits_what_was_typed(page: Page, shop):
    page.goto("/")
    focus_search_by_keyboard(page)
    box = combobox(page)
    listbox = page.get_by_role("listbox", name="Search suggestions", include_hidden=True)
    page.keyboard.type("kestrel")
    expect(box).to_have_attribute("aria-expanded", "true")
    page.keyboard.press("ArrowDown")
    expect(box).to_have_attribute("aria-activedescendant", "nav-search-option-0")

    page.keyboard.press("Escape")
    expect(box).to_have_attribute("aria-expanded", "false")
    expect(listbox).to_be_hidden()
    expect(box).not_to_have_attribute("aria-activedescendant", re.compile(".*"))
    expect(box).to_have_value("kestrel")
    page.keyboard.press("Escape")
    expect(box).to_have_value("")

    # Tab leaves the box and closes the list.
    page.keyboard.type("osprey")
    expect(box).to_have_attribute("aria-expanded", "true")
    page.keyboard.press("Tab")
    expect(box).to_have_attribute("aria-expanded", "false")
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("button", name="Search")).to_be_focused()

    # Enter with no option active submits the text as typed.
    page.keyboard.press("Shift+Tab")
    expect(box).to_be_focused()
    page.keyboard.press("End")  # focus by Tab selects the text
    page.keyboard.type(" buds")
    expect(box).to_have_attribute("aria-expanded", "true")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/search\?q=osprey\+buds$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Results for “osprey buds”")


PRODUCT_NAME = "Kestrel <img src=x onerror=alert(1)> Decoy"
# Shown only if the catalog search finds it: every word is in the product's name.
MODEL_TEXT = "kestrel decoy <img src=x onerror=alert(1)>"


def test_markup_in_product_names_and_model_suggestions_stays_text(page: Page, app):
    headphones = make_category("Headphones")
    decoy = make_product(PRODUCT_NAME, "1299.00", headphones)
    assert normalize_query(MODEL_TEXT) == MODEL_TEXT  # stored as the engine stores it
    db.session.add(ProductQuery(product_id=decoy.id, text=MODEL_TEXT, model="test-model"))
    db.session.commit()
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))

    page.goto("/")
    focus_search_by_keyboard(page)
    page.keyboard.type("kestrel decoy")
    listbox = page.get_by_role("listbox", name="Search suggestions")
    product = listbox.get_by_role("group", name="Products").get_by_role("option")
    expect(product.locator(".suggest-name")).to_have_text(PRODUCT_NAME)
    expect(product.locator(".suggest-price")).to_have_text("$1,299.00")
    suggestion = listbox.get_by_role("group", name="Suggestions").get_by_role(
        "option", name=MODEL_TEXT
    )
    expect(suggestion).to_have_text(MODEL_TEXT)
    expect(suggestion).to_have_attribute("data-source", "ai")
    expect(suggestion.locator("mark").first).to_have_text(re.compile("^kestrel$", re.IGNORECASE))
    # Thumbnails are the only images, and none came from the text.
    expect(listbox.locator("img:not(.suggest-thumb)")).to_have_count(0)
    expect(listbox.locator('img[src="x"], script')).to_have_count(0)
    assert (
        listbox.evaluate("node => node.querySelectorAll('*:not(ul, li, span, mark, img)').length")
        == 0
    )
    assert dialogs == []


def test_without_javascript_the_form_still_searches(browser: Browser, live_server: str, shop):
    context = browser.new_context(base_url=live_server, java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto("/")
        box = page.locator("#nav-search")
        expect(box).not_to_have_attribute("role", "combobox")
        expect(page.get_by_role("listbox")).to_have_count(0)
        box.fill("kestrel")
        box.press("Enter")
        expect(page).to_have_url(re.compile(r"/search\?q=kestrel$"))
        expect(page.get_by_role("status")).to_contain_text("found")
    finally:
        context.close()
