"""The shop assistant (issue 9): a streaming chat, on its page and in a panel on every page.

The model is the fake OpenAI-compatible server, scripted per test; the products, prices
and links come from the test database through the real app.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest
from flask import Flask, url_for
from playwright.sync_api import Browser, Locator, Page, expect
from sqlalchemy import select

from shopai import create_app
from shopai.ai.settings import AISettings
from shopai.ai_service import ai_client, flush_usage
from shopai.assistant.models import ChatMessage
from shopai.catalog.models import Product
from shopai.extensions import db

from ..factories import make_category, make_product
from ..fakes.openai_server import FakeOpenAI

pytestmark = pytest.mark.browser

# Bounds for what goes through the app and the fake model; not durations under test.
ANSWER = 20_000


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def app(app_config: dict, fake: FakeOpenAI) -> Iterator[Flask]:
    """The shop with its chat model on the fake server, and CSRF checked as in production
    (the live server and the page fixtures use this app)."""
    settings = AISettings.from_env(
        {
            "OPENAI_BASE_URL": fake.base_url,
            "SHOPAI_CHAT_RETRIES": "0",
            "SHOPAI_AI_BREAKER_RESET_SECONDS": "600",
        }
    )
    app = create_app({**app_config, "SHOPAI_AI": settings, "WTF_CSRF_ENABLED": True})
    with app.app_context():
        yield app
        flush_usage()
        ai_client().close()
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def kestrel(app: Flask) -> Product:
    headphones = make_category("Headphones")
    product = make_product(
        "Kestrel K7 Wireless Headphones",
        "199.00",
        headphones,
        "Over-ear noise cancelling headphones with 30 hours of battery.",
    )
    make_product("Osprey Buds Pro", "129.00", headphones, "Small wireless earbuds.")
    return product


def product_url(app: Flask, product: Product) -> str:
    with app.test_request_context():
        return url_for("catalog.product", key=product.slug)


def question_box(scope: Page | Locator) -> Locator:
    return scope.get_by_role("textbox", name="Your question")


def answers(chat: Locator) -> Locator:
    return chat.locator(".assistant-message-assistant")


def questions(chat: Locator) -> Locator:
    return chat.locator(".assistant-message-user")


def helpful(scope: Locator) -> Locator:
    return scope.get_by_role("button", name="Helpful", exact=True)


def wait_for_status(message_id_or_none: int | None, status: str) -> ChatMessage:
    """The newest answer (or the given one) once the server has saved it as `status`."""
    deadline = time.monotonic() + ANSWER / 1000
    while True:
        db.session.expire_all()
        query = select(ChatMessage).where(ChatMessage.role == "assistant")
        if message_id_or_none is not None:
            query = query.where(ChatMessage.id == message_id_or_none)
        message = db.session.scalars(query.order_by(ChatMessage.id.desc())).first()
        if message is not None and message.status == status:
            return message
        if time.monotonic() > deadline:
            pytest.fail(f"the answer never became {status}: {message!r}")
        time.sleep(0.05)


def test_answer_streams_in_with_cards_from_the_catalog(page: Page, app: Flask, fake, kestrel):
    url = product_url(app, kestrel)
    words = ["Here ", "are ", "some ", "good ", "headphones ", "for ", "you", ". "]
    fake.reply_stream(
        [*words, f"The [P{kestrel.id}] costs $199.00 and lasts all day.", "\n"],
        chunk_delay=0.25,
    )
    page.goto("/assistant")
    expect(page.get_by_role("heading", level=1)).to_have_text("Shop assistant")
    expect(page.get_by_text("prices and links come from the catalog")).to_be_visible()
    chat = page.locator("[data-assistant]")
    expect(page.get_by_role("button", name="Ask the assistant")).to_have_count(0)  # inline here
    box = question_box(page)
    expect(box).to_be_enabled()
    box.fill("Which wireless headphones should I buy?")
    with page.expect_request(lambda r: r.url.endswith("/api/chat") and r.method == "POST") as sent:
        box.press("Enter")
    request = sent.value
    assert request.post_data_json == {
        "conversation_id": None,
        "message": "Which wireless headphones should I buy?",
    }
    assert request.all_headers()["accept"] == "text/event-stream"
    assert request.all_headers().get("x-csrftoken")

    expect(questions(chat)).to_have_count(1)
    expect(questions(chat).locator(".assistant-bubble")).to_have_text(
        "Which wireless headphones should I buy?"
    )
    expect(box).to_have_value("")
    answer = answers(chat).last
    bubble = answer.locator(".assistant-bubble")
    # Tokens show as they arrive: part of the answer is there while the rest is written.
    expect(bubble).to_contain_text("Here are some")
    state, text = chat.evaluate(
        "root => [root.dataset.state, root.querySelector('.assistant-message-assistant"
        " .assistant-bubble').textContent]"
    )
    assert state == "streaming", "the whole answer came at once"
    assert "lasts all day" not in text
    expect(page.get_by_role("button", name="Stop")).to_be_visible()
    expect(page.get_by_role("button", name="Send")).to_be_disabled()

    # Done: the server's HTML replaces the plain text, with the product linked by the shop.
    expect(helpful(answer)).to_be_visible(timeout=ANSWER)
    expect(bubble).to_contain_text("Here are some good headphones for you.")
    expect(bubble).to_contain_text("costs $199.00 and lasts all day.")
    link = bubble.get_by_role("link", name="Kestrel K7 Wireless Headphones")
    expect(link).to_have_attribute("href", url)
    expect(page.get_by_role("button", name="Stop")).to_be_hidden()
    expect(page.get_by_role("button", name="Send")).to_be_enabled()
    expect(box).to_be_focused()

    # Cards come from the database: name, price and link.
    cards = answer.get_by_role("list", name="Products").get_by_role("listitem")
    expect(cards).to_have_count(1)
    expect(cards.get_by_role("link")).to_have_text("Kestrel K7 Wireless Headphones")
    expect(cards.get_by_role("link")).to_have_attribute("href", url)
    expect(cards.locator(".assistant-card-price")).to_have_text("$199.00")
    expect(cards.locator(".assistant-card-category")).to_have_text("Headphones")
    prompt = fake.requests_to("/chat/completions")[-1].body["messages"][-1]["content"]
    assert "Kestrel K7 Wireless Headphones" in prompt

    # Rating: pressed state follows the server, and survives a refresh.
    thumbs_up = helpful(answer)
    expect(thumbs_up).to_have_attribute("aria-pressed", "false")
    thumbs_up.click()
    expect(thumbs_up).to_have_attribute("aria-pressed", "true")
    expect(answer.get_by_role("button", name="Not helpful")).to_have_attribute(
        "aria-pressed", "false"
    )
    page.reload()
    expect(questions(chat)).to_have_count(1)
    expect(helpful(answers(chat))).to_have_attribute("aria-pressed", "true")
    expect(answers(chat).locator(".assistant-card")).to_have_count(1)
    assert wait_for_status(None, "complete").rating == 1

    # A new conversation starts empty, and stays so after a refresh.
    page.get_by_role("button", name="New conversation").click()
    expect(page.get_by_role("status")).to_have_text("New conversation started.")
    expect(chat.locator(".assistant-message")).to_have_count(0)
    expect(box).to_be_focused()
    page.reload()
    expect(page.get_by_text("Ask about products: what suits you")).to_be_visible()
    expect(chat.locator(".assistant-message")).to_have_count(0)


def test_stop_keeps_the_partial_answer_and_a_refresh_shows_it(page: Page, fake, kestrel):
    fake.reply_stream(
        ["Let ", "me ", "think ", "about ", "that "] + ["more "] * 60, chunk_delay=0.2
    )
    page.goto("/assistant")
    chat = page.locator("[data-assistant]")
    box = question_box(page)
    box.fill("Tell me about wireless headphones")
    page.get_by_role("button", name="Send").click()
    answer = answers(chat).last
    expect(answer.locator(".assistant-bubble")).to_contain_text("Let me think")

    page.get_by_role("button", name="Stop").click()
    expect(answer.locator(".assistant-note")).to_have_text("Stopped")
    expect(page.get_by_role("button", name="Stop")).to_be_hidden()
    expect(page.get_by_role("button", name="Send")).to_be_enabled()
    expect(box).to_be_focused()
    assert fake.client_gone.wait(5), "the model kept writing after the shopper stopped"
    assert fake.stream_disconnects == 1
    shown = answer.locator(".assistant-bubble").text_content() or ""
    assert shown.startswith("Let me think")
    saved = wait_for_status(None, "stopped")
    assert saved.content.startswith(shown)  # the server may have sent more than arrived
    assert len(saved.content) < len("Let me think about that ") + 10 * len("more ")

    page.reload()
    expect(questions(chat)).to_have_count(1)
    expect(questions(chat)).to_contain_text("Tell me about wireless headphones")
    expect(answers(chat)).to_have_count(1)
    expect(answers(chat).locator(".assistant-bubble")).to_have_text(saved.content.strip())
    expect(answers(chat).locator(".assistant-note")).to_have_text("Stopped")
    expect(helpful(answers(chat))).to_be_visible()


USER_MARKUP = "<img src=x onerror=alert(1)> and <b>bold</b> headphones"
MODEL_MARKUP = "<script>alert(2)</script> is not <b>bold</b> here."


def test_markup_from_the_shopper_and_the_model_stays_text(page: Page, fake, kestrel):
    fake.reply_stream(["Sure", ": ", MODEL_MARKUP, "\n"], chunk_delay=0.05)
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto("/assistant")
    chat = page.locator("[data-assistant]")

    def check() -> None:
        expect(questions(chat).locator(".assistant-bubble")).to_have_text(USER_MARKUP)
        expect(answers(chat).locator(".assistant-bubble")).to_contain_text(f"Sure: {MODEL_MARKUP}")
        expect(chat.locator("script, b, img:not(.assistant-card-image), [onerror]")).to_have_count(
            0
        )
        expect(chat.locator('img[src="x"]')).to_have_count(0)

    question_box(page).fill(USER_MARKUP)
    question_box(page).press("Enter")
    expect(helpful(answers(chat))).to_be_visible(timeout=ANSWER)
    check()
    page.reload()  # the stored conversation, rendered by the server
    expect(answers(chat)).to_have_count(1)
    check()
    assert dialogs == []


def test_keyboard_shopper_uses_the_panel_on_any_page(page: Page, fake, kestrel):
    fake.reply_stream(["Happy ", "to ", "help ", "with ", "that."], chunk_delay=0.05)
    fake.reply_stream(["Thinking ", "it ", "over "] + ["slowly "] * 60, chunk_delay=0.2)
    chat_loads: list[str] = []
    page.on("request", lambda r: chat_loads.append(r.url) if r.url.endswith("/api/chat") else None)
    page.goto("/")
    panel = page.get_by_role("dialog", name="Shop assistant")
    expect(panel).to_be_hidden()
    toggle = page.get_by_role("button", name="Ask the assistant")
    expect(toggle).to_be_visible()
    assert chat_loads == []  # nothing is loaded until the panel opens

    # The toggle comes last in the tab order: Shift+Tab from the page reaches it.
    page.locator("body").focus()
    page.keyboard.press("Shift+Tab")
    expect(toggle).to_be_focused()
    page.keyboard.press("Enter")
    expect(panel).to_be_visible()
    box = question_box(panel)
    expect(box).to_be_focused()
    assert len(chat_loads) == 1

    # Shift+Enter starts a new line; Enter sends.
    page.keyboard.type("Good headphones")
    page.keyboard.press("Shift+Enter")
    page.keyboard.type("for the train?")
    expect(box).to_have_value("Good headphones\nfor the train?")
    page.keyboard.press("Enter")
    chat = panel.locator("[data-assistant]")
    expect(questions(chat).locator(".assistant-bubble")).to_have_text(
        "Good headphones\nfor the train?"
    )
    expect(helpful(answers(chat))).to_be_visible(timeout=ANSWER)
    expect(answers(chat).locator(".assistant-bubble")).to_have_text("Happy to help with that.")
    expect(box).to_be_focused()

    # Escape stops an answer being written, and only then closes the panel.
    page.keyboard.type("And cheaper ones?")
    page.keyboard.press("Enter")
    expect(answers(chat).nth(1).locator(".assistant-bubble")).to_contain_text("Thinking it over")
    page.keyboard.press("Escape")
    expect(answers(chat).nth(1).locator(".assistant-note")).to_have_text("Stopped")
    expect(panel).to_be_visible()
    assert fake.client_gone.wait(5)
    page.keyboard.press("Escape")
    expect(panel).to_be_hidden()
    expect(toggle).to_be_focused()

    # Another page: the panel shows the same conversation once opened.
    wait_for_status(None, "stopped")
    page.goto("/products")
    page.get_by_role("button", name="Ask the assistant").click()
    panel = page.get_by_role("dialog", name="Shop assistant")
    chat = panel.locator("[data-assistant]")
    expect(questions(chat)).to_have_count(2)
    expect(answers(chat).first.locator(".assistant-bubble")).to_have_text(
        "Happy to help with that."
    )
    expect(answers(chat).nth(1).locator(".assistant-note")).to_have_text("Stopped")
    expect(question_box(panel)).to_be_focused()


CUT_OFF_NOTE = "The answer was cut off."  # a stored answer's note, without the server's notice


def test_cut_off_and_search_only_answers_say_so(page: Page, fake, kestrel):
    fake.reply_stream(["Both ", "are ", "fine ", "and ", "the "], cut_after=3, chunk_delay=0.05)
    fake.reply_error(500, message="upstream down")
    page.goto("/assistant")
    chat = page.locator("[data-assistant]")
    box = question_box(page)

    box.fill("Compare the wireless headphones")
    box.press("Enter")
    first = answers(chat).nth(0)
    expect(first.locator(".assistant-note")).to_have_text(
        "The answer was cut off. Try asking again.", timeout=ANSWER
    )
    expect(first.locator(".assistant-bubble")).to_contain_text("Both are fine")
    expect(page.get_by_role("button", name="Send")).to_be_enabled()

    # The model is down: the search's own results, and a notice saying what happened.
    box.fill("Kestrel headphones")
    box.press("Enter")
    second = answers(chat).nth(1)
    expect(helpful(second)).to_be_visible(timeout=ANSWER)
    expect(second.locator(".assistant-note")).to_contain_text("search-only answer")
    expect(second.locator(".assistant-bubble")).to_contain_text(
        "Kestrel K7 Wireless Headphones — $199.00"
    )
    expect(second.locator(".assistant-card").get_by_role("link")).to_have_text(
        ["Kestrel K7 Wireless Headphones"]
    )
    expect(second.locator(".assistant-card").first).to_contain_text("$199.00")
    page.reload()
    expect(answers(chat).nth(0).locator(".assistant-note")).to_have_text(CUT_OFF_NOTE)
    expect(answers(chat).nth(1).locator(".assistant-note")).to_contain_text("search-only answer")


def test_a_refused_message_keeps_what_the_shopper_typed(
    browser: Browser, live_server: str, kestrel
):
    """Refusals (rate limits, budgets, validation) are JSON errors, shown in the status
    line; the question stays in the box to send again. (A context of its own: the
    browser logs the 429 as a console error, which the `page` fixture forbids.)"""
    context = browser.new_context(base_url=live_server)
    try:
        page = context.new_page()
        refusal = {"error": {"code": 429, "name": "Too Many Requests", "message": "Slow down."}}
        page.route(
            re.compile(r"/api/chat$"),
            lambda route: (
                route.fulfill(status=429, json=refusal)
                if route.request.method == "POST"
                else route.continue_()
            ),
        )
        page.goto("/assistant")
        box = question_box(page)
        box.fill("Any headphones?")
        box.press("Enter")
        expect(page.get_by_role("status")).to_have_text("Slow down.")
        expect(box).to_have_value("Any headphones?")
        expect(box).to_be_editable()
        expect(page.locator("[data-assistant] .assistant-message")).to_have_count(0)
        expect(page.get_by_role("button", name="Send")).to_be_enabled()
    finally:
        context.close()
