"""The guard between the model's text and the shopper: prices, references, links."""

from __future__ import annotations

from decimal import Decimal
from html.parser import HTMLParser

import pytest

from shopai.assistant.guard import REMOVED_PRICE, ProductFacts, ReplyGuard, amounts_in, guard_text
from shopai.assistant.render import render_reply

K7 = ProductFacts(1, "Kestrel K7 Wireless Headphones", Decimal("199.00"), "/products/k7")
BUDS = ProductFacts(2, "Kestrel Buds Mini", Decimal("59.00"), "/products/buds")
GIVEN = [K7, BUDS]


def check(text: str, allowed: set[Decimal] | None = None) -> str:
    return guard_text(GIVEN, text, allowed or set())


def test_a_reference_becomes_a_link_built_from_the_database():
    assert check("Try [P1].") == "Try [Kestrel K7 Wireless Headphones](/products/k7)."


def test_a_reference_to_a_product_not_given_disappears():
    assert check("Try [P999] instead.") == "Try  instead."


def test_a_wrong_price_is_corrected_to_the_catalogs():
    assert check("The [P1] costs $149 today.") == (
        "The [Kestrel K7 Wireless Headphones](/products/k7) costs $199.00 today."
    )


def test_a_price_after_a_product_name_written_out_is_checked_too():
    assert check("Kestrel Buds Mini: only 49 dollars!") == "Kestrel Buds Mini: only 59.00 dollars!"


def test_a_right_price_is_left_as_written():
    assert check("The Kestrel Buds Mini is $59.") == "The Kestrel Buds Mini is $59."


def test_a_price_about_no_known_product_is_removed():
    assert check("The Zentro Phantom X is $99.99.") == f"The Zentro Phantom X is ${REMOVED_PRICE}."


def test_the_shoppers_own_budget_may_be_repeated():
    assert check("Both are under $500.", {Decimal(500)}) == "Both are under $500."


def test_each_price_follows_the_product_named_before_it():
    text = "The [P1] ($10) beats the [P2] ($20)."
    assert "($199.00)" in check(text) and "($59.00)" in check(text)


def test_chinese_prices_are_checked():
    assert check("Kestrel Buds Mini 只要 30元。") == "Kestrel Buds Mini 只要 59.00元。"


def test_links_the_model_writes_keep_only_their_text():
    assert check("[Buy now](javascript:alert(1)) or <https://evil.example>.") == (
        "Buy now or https://evil.example."
    )


def test_numbers_that_are_not_prices_are_left_alone():
    text = "The Kestrel K7 lasts 30 hours and has 2 modes."
    assert check(text) == text


@pytest.mark.parametrize("size", [1, 2, 3, 5, 8])
def test_streaming_gives_the_same_text_and_never_rewrites_what_was_shown(size):
    text = (
        "I recommend the [P1] for $149. It is great! The Kestrel Buds Mini costs 49 dollars.\n"
        "Also try [P9] or the Zentro X at $99.99. [Buy](https://x.example/a(b)) 好的。"
    )
    guard = ReplyGuard({p.id: p for p in GIVEN}, set())
    shown = "".join(guard.feed(text[i : i + size]) for i in range(0, len(text), size))
    shown += guard.finish()
    assert shown == guard.text == check(text)
    assert guard.cited == [1] and guard.corrected == 2 and guard.removed == 1


def test_plain_words_are_released_at_once():
    guard = ReplyGuard({p.id: p for p in GIVEN}, set())
    assert guard.feed("Hello the") == "Hello the"
    assert guard.feed(" K7 costs") == " K7 costs"  # "7 c..." cannot be a price
    assert guard.feed(" 100 do") == " "  # "100 dollars" would be: wait for the word
    assert guard.feed("ors, or $1") == "100 doors, or "  # held from "$" to the sentence end
    assert guard.feed("00. Next") == "$—. Next"


def test_amounts_in_a_question():
    assert amounts_in("under $500 or 1,200元, about 99.5") == {
        Decimal(500),
        Decimal(1200),
        Decimal("99.5"),
    }


@pytest.mark.parametrize(
    "markdown",
    [
        "<script>alert(1)</script>",
        "<img src=x onerror=alert(1)>",
        "[x](javascript:alert(1))",
        "![tracker](https://evil.example/pixel.png)",
        '<a href="https://evil.example">click</a>',
        "<b>bold</b>",
    ],
)
def test_rendered_replies_carry_no_markup_from_the_text(markdown):
    tags = Elements()
    tags.feed(str(render_reply(markdown)))
    assert {tag for tag, _ in tags.found} <= {"p", "a"}
    for _, attributes in tags.found:
        assert all(name in ("href", "rel") for name, _ in attributes)
        assert all(not (value or "").startswith("javascript:") for _, value in attributes)


class Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, attrs))


def test_rendered_replies_keep_simple_formatting_and_shop_links():
    html = str(render_reply("**Two** picks:\n\n- [K7](/products/k7)\n- *Buds*"))
    assert "<strong>Two</strong>" in html and "<em>Buds</em>" in html
    assert '<a href="/products/k7" rel="nofollow noopener">K7</a>' in html
