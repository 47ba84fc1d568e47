"""The guard between the model's text and the shopper: prices, references, links."""

from __future__ import annotations

import random
import re
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


# -- prices in every form a shopper reads as one -----------------------------------------


@pytest.mark.parametrize(
    ("written", "shown"),
    [
        ("USD 1,299", "USD 199.00"),
        ("usd  19", "usd  199.00"),
        ("US$19", "US$199.00"),
        ("EUR 19", "EUR 199.00"),
        ("RMB 19", "RMB 199.00"),
        ("CNY19", "CNY199.00"),
        ("1.299,00 €", "199.00 €"),
        ("19,99 €", "199.00 €"),
        ("19€", "199.00€"),
        ("19 US dollars", "199.00 US dollars"),
        ("19  dollars", "199.00  dollars"),
        ("19 euros", "199.00 euros"),
        ("19 EUR", "199.00 EUR"),
        ("19 usd", "199.00 usd"),
        ("19 rmb", "199.00 rmb"),
        ("19 人民币", "199.00 人民币"),
        ("19欧元", "199.00欧元"),
        ("19块", "199.00块"),
        ("**19** dollars", "**199.00** dollars"),
        ("$**19**", "$**199.00**"),
        ("$ _19_", "$ _199.00_"),
        ("$`19`", "$`199.00`"),
        ("\uff0419", "\uff04199.00"),
        ("￥19", "￥199.00"),
        ("\uff04\uff11\uff19", "\uff04199.00"),  # full-width digits
        ("$1k", "$199.00"),
        ("$1K", "$199.00"),
        ("$1 million", "$199.00"),
        ("1k dollars", "199.00 dollars"),
    ],
)
def test_a_wrong_price_is_corrected_whatever_its_currency_marker(written, shown):
    assert check(f"The [P1] costs {written} now.") == (
        f"The [Kestrel K7 Wireless Headphones](/products/k7) costs {shown} now."
    )


@pytest.mark.parametrize(
    "written",
    [
        "$&#49;&#57;",  # markdown shows character references decoded: "$19"
        "&#36;19",
        "&dollar;19",
        "$&amp;#49;9",  # decoded again: "&#49;" would show as "1"
        "19&nbsp;dollars",
        "19 &euro;",
        "\\$19",  # a backslash escape shows "$19"
        "$\\19",
        "1\\.299,00 €",
        "$\u200b19",  # an invisible character
        "1\u200b9 dollars",
    ],
)
def test_a_price_is_checked_as_markdown_will_show_it(written):
    shown = str(render_reply(check(f"The [P1] costs {written} now.")))
    assert "199.00" in shown and "19 " not in shown and "\\" not in shown
    assert re.sub(r"\D", "", shown.split("costs")[1]) == "19900"


def test_a_right_price_in_european_style_is_left_as_written():
    assert check("The Kestrel Buds Mini: 59,00 €.") == "The Kestrel Buds Mini: 59,00 €."


def test_an_amount_that_reads_two_ways_is_not_confirmed():
    # "$1.299" is $1,299 to some shoppers, $1.30 to others: it is neither made right
    # nor kept for a product that costs $1,299.
    big = ProductFacts(3, "Zentro TV", Decimal("1299.00"), "/products/tv")
    assert guard_text([big], "The Zentro TV is $1.299.", set()) == "The Zentro TV is $1,299.00."


def test_a_price_split_over_two_lines_is_checked():
    # Markdown joins the lines: "$\n19" shows as "$ 19".
    assert check("The [P1] costs $\n19 now.").endswith("costs $\n199.00 now.")
    assert check("The [P1] costs 19\ndollars.").endswith("costs 199.00\ndollars.")


def test_amounts_in_a_question_in_other_styles():
    assert amounts_in("under 1.299,00 € or $2k") == {Decimal(1299), Decimal(2000)}


# -- which product a price is about ------------------------------------------------------

ZENTRO_X = ProductFacts(3, "Zentro X", Decimal("99.00"), "/products/zx")
ZENTRO_X_PRO = ProductFacts(4, "Zentro X Pro", Decimal("199.00"), "/products/zxp")


def test_a_price_is_about_the_last_time_a_product_was_named_before_it():
    text = (
        "Unlike Kestrel Buds Mini, the Kestrel K7 Wireless Headphones fold, "
        "but Kestrel Buds Mini costs only $59."
    )
    assert check(text) == text


@pytest.mark.parametrize("products", [[ZENTRO_X, ZENTRO_X_PRO], [ZENTRO_X_PRO, ZENTRO_X]])
def test_a_longer_name_wins_over_a_name_inside_it(products):
    assert guard_text(products, "The Zentro X Pro costs $199.", set()) == (
        "The Zentro X Pro costs $199."
    )
    assert guard_text(products, "The Zentro X costs $199.", set()) == "The Zentro X costs $99.00."


def test_a_name_inside_a_longer_word_is_no_mention():
    # "Zentro XL" is not the Zentro X: the price is about no product given, so removed.
    assert guard_text([ZENTRO_X], "The Zentro XL costs $129.", set()) == (
        f"The Zentro XL costs ${REMOVED_PRICE}."
    )


def test_a_price_is_removed_when_which_product_it_is_about_is_a_guess():
    # "Respectively" may be meant, or not: either way a guess.
    assert check("The [P1] and the [P2] cost $59 and $199.") == (
        "The [Kestrel K7 Wireless Headphones](/products/k7) and the "
        f"[Kestrel Buds Mini](/products/buds) cost ${REMOVED_PRICE} and ${REMOVED_PRICE}."
    )
    twin = ProductFacts(5, "Kestrel Buds Mini", Decimal("79.00"), "/products/buds-2")
    assert guard_text([BUDS, twin], "The Kestrel Buds Mini is $59.", set()) == (
        f"The Kestrel Buds Mini is ${REMOVED_PRICE}."
    )


# -- links -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "markdown",
    [
        "See [the deal. Now](https://evil.example) today.",  # split across sentences
        "See [a [b] c](https://evil.example).",
        "See [a](https://evil.example/((x))).",
        "See [here][x] today.\n\n[x]: https://evil.example",
        "See the [deals] today.\n\n[deals]: https://evil.example",
        "See [a](//evil.example).",
        "See [a](/\\evil.example).",
        "See [a](&#47;&#47;evil.example).",
        "See <https://evil.example>.",
    ],
)
def test_no_link_off_the_site_reaches_a_shopper(markdown):
    for text in (markdown, check(markdown)):
        tags = Elements()
        tags.feed(str(render_reply(text)))
        hrefs = [
            value for _, attributes in tags.found for name, value in attributes if name == "href"
        ]
        # "/%5Cevil.example" (markdown's encoding of "/\\evil.example") is a path here.
        assert all(re.fullmatch(r"/(?!/)[\w%./-]*", value or "") for value in hrefs)
        assert not any("evil" in (value or "") for value in hrefs if "%5C" not in (value or ""))


def test_a_product_name_is_shown_as_written_not_as_markdown():
    odd = ProductFacts(7, "Cable](https://evil.example) [x *and* `y`", Decimal(5), "/products/c")
    html = str(render_reply(guard_text([odd], "Try [P7].", set())))
    assert html == (
        '<p>Try <a href="/products/c" rel="nofollow noopener">'
        "Cable](https://evil.example) [x *and* `y`</a>.</p>\n"
    )


def test_a_reference_after_an_exclamation_mark_is_not_an_image():
    html = str(render_reply(check("Wow![P2] is great.")))
    assert '<a href="/products/buds"' in html


# -- images and the stream ---------------------------------------------------------------


@pytest.mark.parametrize("size", [1, 2, 3, 7])
def test_a_markdown_image_does_not_break_the_stream(size):
    text = "Look ![photo](https://img/p.png) here. Wow! Great![P1] fine."
    guard = ReplyGuard({p.id: p for p in GIVEN}, set())
    shown = "".join(guard.feed(text[i : i + size]) for i in range(0, len(text), size))
    shown += guard.finish()
    assert shown == guard.text == check(text)
    assert guard.dropped == 0 and "Look photo here." in shown


def test_a_sentence_that_would_contradict_what_was_shown_is_dropped_not_raised():
    guard = ReplyGuard({p.id: p for p in GIVEN}, set())
    guard.feed("Look ")
    guard._sentence_shown = "Look !"  # as if "!" had been shown before "[" arrived
    guard._released = 6
    assert guard.feed("![photo](https://img/p.png) here.\nNext") == "\nNext"
    assert guard.dropped == 1


# -- fuzz: whatever the model writes, in whatever pieces ---------------------------------

FRAGMENTS = [
    *["The", "great", "and", "costs", "only", "for", "好的", "耳机很好", "30 hours", "2", "K7"],
    *["[P1]", "[P2]", "[P9]", "[ p2 ]", K7.name, BUDS.name, "Kestrel K7", "Zentro"],
    *["$19", "$1k", "USD 1,299", "1.299,00 €", "19 US dollars", "19  dollars", "19 euros"],
    *[
        "19 人民币",
        "30元",
        "$**19**",
        "\uff0419",
        "￥1,299",
        "$&#49;&#57;",
        "&#36;19",
        "$&amp;#49;9",
    ],
    *["\\$19", "$\\19", "1\\.299,00 €", "$\u200b19", "19&nbsp;dollars", "$1.299", "$ 1 299"],
    *["$", "19", "dollars", "USD", "€", "k", "million", "&", "&amp;", "\\", "*", "**", "_", "`"],
    *["[a](https://evil.example)", "[a [b] c](https://evil.example)", "[x](/products/k7)"],
    *["[a](https://evil.example/((x)))", "<https://evil.example>", "[here][x]", "[deals]"],
    *["\n\n[x]: https://evil.example\n\n", "\n\n[deals]: //evil.example\n\n", "[a](/\\e.x)"],
    *["![photo](https://img/p.png)", "!", "[", "]", "(", ")", "<", ">", "Wow!"],
    *[". ", "! ", "? ", "。", "\n", "\n\n", ", ", "- ", "#"],
]
AMOUNT_SHOWN = r"(?:\d{1,3}(?:[.,' ]\d{3})+|\d+)(?:[.,]\d+)?"
PRICE_SHOWN = re.compile(
    rf"(?:[$€¥£\uff04￥]|\b(?:USD|US\$|EUR|RMB|CNY)\b)\s*(?P<a>{AMOUNT_SHOWN}(?:k|m|\s*million)?\b)"
    rf"|(?<![\w.,])(?P<b>{AMOUNT_SHOWN})\s*(?:[$€¥£\uff04￥元]|人民币|(?:US\s+dollars|dollars|euros)\b)",
    re.IGNORECASE,
)


class Text(HTMLParser):
    """A page's visible text, with blocks apart ("¶"): what a shopper reads."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.parts.append("¶" if tag in ("p", "li", "h3", "h4", "blockquote", "pre") else "")

    def handle_endtag(self, tag: str) -> None:
        self.handle_starttag(tag, [])

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def prices_shown(html: str) -> list[str]:
    text = Text()
    text.feed(html)
    visible = re.sub(r"\n\s*\n", "¶", "".join(text.parts))  # lines apart, even in code
    visible = re.sub(r"[\\\u200b-\u200f\u2060\ufeff]", "", visible)
    # Digits as written, and any multiplier ("$199.00k" is not $199).
    return [re.sub(r"[^\dkKmM]", "", a or b) for a, b in PRICE_SHOWN.findall(visible)]


@pytest.mark.parametrize("catalog", [GIVEN, [K7]], ids=["two products", "one product"])
def test_fuzz_no_made_up_price_or_foreign_link_and_no_crash(catalog):
    products = {p.id: p for p in catalog}
    # As a shopper reads a catalog price: 199, 199.00, 1,299.00 (digits only).
    right = {d for p in catalog for d in (f"{p.price:.0f}", f"{p.price:.2f}".replace(".", ""))}
    rng = random.Random(20240611)  # noqa: S311 - not for secrets: a repeatable fuzz
    for case in range(300):
        text = "".join(
            rng.choice(FRAGMENTS) + rng.choice(["", " ", " ", "\n"])
            for _ in range(rng.randint(1, 14))
        )
        guard = ReplyGuard(products, set())
        shown, at = [], 0
        while at < len(text):
            size = rng.randint(1, 12)
            shown.append(guard.feed(text[at : at + size]))
            at += size
        shown.append(guard.finish())
        context = f"case {case}: {text!r}"
        assert "".join(shown) == guard.text, context
        assert guard.dropped == 0, context
        assert guard.text == guard_text(catalog, text, set()), context
        html = str(render_reply(guard.text))
        tags = Elements()
        tags.feed(html)
        for _, attributes in tags.found:
            for name, value in attributes:
                assert name != "href" or re.fullmatch(r"/products/\w+", value or ""), context
        assert set(prices_shown(html)) <= right, (context, guard.text)


@pytest.mark.parametrize(
    "text",
    [
        "Kestrel Buds Mini 只要30元。",  # no space before the amount
        "Buy 2 $19 [P2] sets.",  # one sign, two amounts
        "The [P1] is $1k million.",
        "The [P1] is 1 [P9] $19.",  # an unknown reference vanishes: "1  $19"
        "The [P1] costs 19 US\ndollars.",
        "The [P1] costs 19 dol&#108;ars.",
        "The [P1] costs $**19**19 €.",  # shows "$1919 €"
        "The [P1] costs USD \n    \n19 dollars.",
        "The [P1] costs 1.2991.299,00 €.",
        "The [P1] costs €\n> 19 today.",  # a quote's lazy line: "€ 19"
    ],
)
def test_cases_found_by_the_fuzz(text):
    for size in (1, 3, len(text)):
        guard = ReplyGuard({p.id: p for p in GIVEN}, set())
        shown = "".join(guard.feed(text[i : i + size]) for i in range(0, len(text), size))
        shown += guard.finish()
        assert shown == guard.text == check(text) and guard.dropped == 0
        assert set(prices_shown(str(render_reply(shown)))) <= {"199", "19900", "59", "5900"}
