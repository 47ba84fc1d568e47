"""What the model writes is checked against the catalog before a shopper reads it.

The model recommends products by reference (`[P12]`); a reference to a product it was
given becomes a link to that product's page, built here from the database (the name
escaped, so a name cannot write markdown), and any other reference disappears. Links
the model writes itself are reduced to their text, for tidy text; the guarantee that
no link reaches a shopper unless the shop made it is `render`'s, which sees the links
markdown actually makes (a link split across sentences, nested brackets, reference
definitions).

Every price the model writes is compared with the product it is about (the product
named nearest before it in the sentence, or else after it): a wrong price is replaced
with the catalog's. A price is any amount with a currency marker: a sign before or
after it ("$", "€", the full-width dollar), a code before it ("USD 1,299"), a word after it ("19 US
dollars", "30元"), with markdown emphasis between ("$**19**"); "1.299,00 €" and "$1k"
are read as a shopper reads them. The text is checked as markdown will show it:
character references ("$&#49;&#57;") and backslash escapes are decoded first, and
invisible characters next to digits dropped. When attribution is ambiguous, the price
is removed rather than guessed: two products with one name, or "the A and the B cost
$1 and $2" (which is which?). A price in a sentence that names no product is kept
only if some product given to the model has it or the shopper wrote that amount
("under $500"); anything else is removed. A shopper's amount never makes a product's
price right ("say it costs $1"). Guessing the product from an earlier sentence was
tried: "Also try the Zentro X at $99" then got another product's price, a worse lie
than none.

The guard works on a stream: text is released as it arrives (whole references
resolved), up to the first character that could start something to rewrite (a digit
that may be a price, a currency sign, "[", "![", "<", "&", a backslash); from there the
sentence is held back until it ends, then checked whole. So tokens keep flowing, and
nothing already shown ever needs correcting. Should a checked sentence ever contradict
what was shown of it, the rest of that sentence is dropped (and counted) rather than
shown inconsistently: the shopper must never see a half-corrected price.
"""

from __future__ import annotations

import functools
import html
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from urllib.parse import quote

# Unicode's currency symbols (category Sc), the full-width dollar and yen among them.
_SIGN_CHARS = "$¢£¤¥֏؋߾߿৲৳৻૱௹฿៛\u20a0-\u20c0꠸﷼﹩\uff04￠￡￥￦"
_SIGN = f"[{_SIGN_CHARS}]"
# Invisible characters (format controls): "$\u200b19" shows as "$19".
_INVISIBLE_CHARS = (
    "\u00ad\u180e\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb\U000e0001-\U000e007f"
)
_INVISIBLE = f"[{_INVISIBLE_CHARS}]"
# What may stand between a currency marker and its number and still show as a price:
# spaces, emphasis and code markers, backslashes, invisible characters.
# Markdown's marks that vanish from view: emphasis, code, a new line's ">" or "#".
_MARKS = "*_~`>#"
_DECOR = f"[\\s{_MARKS}\\\\{_INVISIBLE_CHARS}]*"
# An amount as written in English or European style: 1,299.00 1.299,00 1 299 19,99
_NUMBER = (
    r"(?:\d{1,3}(?:,\d{3})+(?:\.\d+)?"
    r"|\d{1,3}(?:\.\d{3})+(?:,\d+)?"
    r"|\d{1,3}(?:[ \u00a0\u202f']\d{3})+(?:[.,]\d+)?"
    r"|\d+(?:[.,]\d+)?"
    r"|\d+(?:[.,']\d+)+)"  # garbage ("1.2991.299,00"): no reading, so removed
    r"(?!\d|[.,]\d)"
)
# How each style reads: (pattern, thousands separators, decimal points).
_STYLES = (
    (re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?"), ",", "."),
    (re.compile(r"\d{1,3}(?:\.\d{3})+(?:,\d+)?"), ".", ","),
    (re.compile(r"\d{1,3}(?:[ \u00a0\u202f']\d{3})+(?:[.,]\d+)?"), " \u00a0\u202f'", ".,"),
    (re.compile(r"\d+(?:\.\d+|,\d{1,2})?"), "", ".,"),
)
_MULTIPLIERS = {"k": 1000, "thousand": 1000, "m": 10**6, "mn": 10**6, "million": 10**6}
_MULTIPLIERS |= {"bn": 10**9, "billion": 10**9}
_MULTIPLIER = (
    f"(?:{_DECOR}(?:thousand|million|billion)|[{_MARKS}\\\\{_INVISIBLE_CHARS}]*(?:k|mn|m|bn))"
    "(?![a-z\\d])"
)
_CODES = r"(?<![a-z])(?:us\$|usd|eur|rmb|cny)"
_UNIT = (
    f"(?:{_SIGN}|(?:us\\s*\\$|us\\s+dollars?|dollars?|bucks?|euros?|usd|eur|rmb|cny|yuan)"
    r"(?![a-z])|元|块|美元|欧元|人民币)"
)
# A currency marker may serve two amounts ("2 $19"): each kind is looked for on its own.
_PRICES = (
    re.compile(
        f"(?:{_SIGN}|{_CODES}){_DECOR}(?P<amount>(?P<number>{_NUMBER})(?P<times>{_MULTIPLIER})?)",
        re.IGNORECASE,
    ),
    re.compile(
        f"(?<![A-Za-z\\d.,])(?P<amount>(?P<number>{_NUMBER})(?P<times>{_MULTIPLIER})?){_DECOR}{_UNIT}",
        re.IGNORECASE,
    ),
)
# The words a price may still end with, for deciding while they stream in.
_UNIT_WORDS = (
    *("us dollars", "us dollar", "us $", "us$", "thousand", "million", "billion"),
    *("dollars", "dollar", "bucks", "buck", "euros", "euro", "usd", "eur", "rmb", "cny", "yuan"),
    *("元", "块", "美元", "欧元", "人民币"),
)
_CURRENCY_BEFORE = re.compile(f"(?:{_SIGN}|{_CODES}){_DECOR}\\Z", re.IGNORECASE)
# Another number touching an amount, as markdown shows it ("**19**19" shows "1919").
_TOUCHING_BEFORE = re.compile(f"\\d[{_MARKS}\\\\]*(?:[\\s'.,][{_MARKS}\\\\]*)?\\Z")
_MULTIPLIER_AT = re.compile(_MULTIPLIER, re.IGNORECASE)
_TOUCHING_AFTER = re.compile(f"[{_MARKS}\\\\]*(?:[\\s'.,][{_MARKS}\\\\]*)?\\d")
_INVISIBLE_RE = re.compile(_INVISIBLE)
_SIGN_OR_INVISIBLE = re.compile(f"[{_SIGN_CHARS}{_INVISIBLE_CHARS}]")
_NUMBER_AHEAD = re.compile(f"{_NUMBER}(?:{_MULTIPLIER})?[\\s{_MARKS}]*", re.IGNORECASE)

_RISKY = re.compile(f"[\\d{_SIGN_CHARS}\\[<!&\\\\{_INVISIBLE_CHARS}]")
# A sentence ends at . ! ? followed by a space, at a Chinese stop, or at a line break,
# unless the line ends with something a price could continue from on the next line
# ("$" then "19": markdown shows "$ 19").
_SENTENCE_END = re.compile("[.!?](?=\\s)|[\u3002\uff01\uff1f]|\n")
_JOINABLE = re.compile(f"(?:\\d|\\d{_MULTIPLIER}|{_SIGN}|{_CODES}){_DECOR}\\Z", re.IGNORECASE)
_LAST_NUMBER = re.compile(f"\\d(?:{_MULTIPLIER})?[\\s{_MARKS}]*(\\D*)\\Z", re.IGNORECASE)
_REFERENCE = re.compile(r"\[\s*#?[Pp]?(\d{1,9})\s*\]")
_MODEL_LINK = re.compile(
    r"!?\[((?:[^\[\]\n]|\[[^\[\]\n]*\])*)\]\((?:[^()\n]|\((?:[^()\n]|\([^()\n]*\))*\))*\)"
)
_AUTOLINK = re.compile(r"<((?:[a-zA-Z][\w+.-]*:|www\.)[^>\s]*)>")
# "!" before "[", not escaped already (an even number of backslashes escape each other).
_IMAGE_START = re.compile(r"(?<!\\)((?:\\\\)*)!(?=\[)")
# Character references as `html.unescape` finds them (a superset of markdown's).
_CHARACTER_REFERENCE = re.compile(r"&(?:#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)")
# Backslash escapes that hide a price's parts ("1\.299,00 €", "\$19"); "\1" shows "\1".
_PRICE_ESCAPE = re.compile(r"\\(?=[\d.,$'])")
_INVISIBLE_BY_NUMBER = re.compile(
    f"(?<=[\\d{_SIGN_CHARS}]){_INVISIBLE}+|{_INVISIBLE}+(?=[\\d{_SIGN_CHARS}])"
)
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#!|~&])")
_URL_UNSAFE = re.compile(r"[\s()<>\\\[\]]")
REMOVED_PRICE = "—"


@dataclass(frozen=True)
class ProductFacts:
    """What the guard may say about a product: all from the database."""

    id: int
    name: str
    price: Decimal
    url: str


@dataclass(frozen=True)
class _Price:
    """An amount written with a currency marker; `amount` is what a correction replaces."""

    start: int
    end: int
    amount: tuple[int, int]
    readings: frozenset[Decimal]
    kept: str = ""  # emphasis markers inside the amount ("**19** million"), kept as written


@dataclass(frozen=True)
class _Mention:
    """Where a product is named; more than one product when the text cannot tell which
    (two products with one name, or names overlapping equally)."""

    start: int
    end: int
    products: tuple[ProductFacts, ...]


def _digits(text: str) -> str:
    """Any script's decimal digits as ASCII (full-width "19" is 19)."""
    return "".join(str(int(char)) if char.isdecimal() else char for char in text)


def readings(number: str, multiplier: str | None = None) -> frozenset[Decimal]:
    """The amounts a shopper may read in `number`: one, or two when the writing is
    ambiguous ("1.299": 1299 in Europe, 1.299 in the US), or none for no amount."""
    text = _digits(number)
    scale = _MULTIPLIERS.get(re.sub("[^a-z]", "", (multiplier or "").casefold()), 1)
    found = set()
    for style, thousands, points in _STYLES:
        if style.fullmatch(text):
            plain = "".join("" if c in thousands else "." if c in points else c for c in text)
            found.add(Decimal(plain) * scale)
    return frozenset(found)


def amounts_in(text: str) -> set[Decimal]:
    """Every money amount written in `text` (with or without a currency sign)."""
    found: set[Decimal] = set()
    for match in re.finditer(f"({_NUMBER})({_MULTIPLIER})?", text, re.IGNORECASE):
        found |= readings(match.group(1), match.group(2))
    return found


def plain_price(price: Decimal) -> str:
    return f"{price:,.2f}"


def markdown_text(text: str) -> str:
    """`text` as markdown that shows exactly it: a product named "Cable](https://x) [x"
    stays a name inside the link the guard builds."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", " ".join(text.split()))


def markdown_link(product: ProductFacts) -> str:
    url = _URL_UNSAFE.sub(lambda m: quote(m.group(0)), product.url)
    return f"[{markdown_text(product.name)}]({url})"


def shown_as(sentence: str) -> str:
    """The sentence with what markdown decodes decoded: character references (again
    and again: "&amp;#49;" must not become "&#49;", which markdown shows as "1"),
    backslash escapes in prices, invisible characters beside digits. A decoded line
    break is a space: it must not start a block."""

    def character(match: re.Match[str]) -> str:
        return re.sub(r"[\x00-\x1f\x7f]", " ", html.unescape(match.group(0)))

    while True:
        decoded = _CHARACTER_REFERENCE.sub(character, sentence)
        decoded = _PRICE_ESCAPE.sub("", decoded)
        decoded = _INVISIBLE_BY_NUMBER.sub("", decoded)
        if decoded == sentence:
            return sentence
        sentence = decoded


def _prices(sentence: str) -> list[_Price]:
    """Every price in the sentence, in order. An amount found both ways ("$19 USD") is
    one price; amounts found overlapping ("$1.299'19 dollars") are one that has no
    reading (so it is removed)."""
    found: list[_Price] = []
    for pattern in _PRICES:
        for m in pattern.finditer(sentence):
            price = _price(sentence, m)
            if any(p.amount == price.amount for p in found):
                continue
            overlapping = [p for p in found if p.amount[0] < price.amount[1] > p.amount[0]]
            overlapping = [p for p in overlapping if price.amount[0] < p.amount[1]]
            if overlapping:
                found = [p for p in found if p not in overlapping]
                merged = [price, *overlapping]
                start, end = min(p.amount[0] for p in merged), max(p.amount[1] for p in merged)
                price = _Price(
                    min(p.start for p in merged),
                    max(p.end for p in merged),
                    (start, end),
                    frozenset(),
                )
            found.append(price)
    return sorted(found, key=lambda p: p.amount)


def _price(sentence: str, m: re.Match[str]) -> _Price:
    amount = m.span("amount")
    parsed = readings(m.group("number"), m.group("times"))
    if (
        _TOUCHING_BEFORE.search(sentence, 0, amount[0])
        or _TOUCHING_AFTER.match(sentence, amount[1])
        or _MULTIPLIER_AT.match(sentence, amount[1])
    ):
        parsed = frozenset()  # "0 19 元", "$**19**19", "$1k million": which amount is it?
    kept = re.sub("[^*_~`]", "", m.group("times") or "")
    return _Price(m.start(), m.end(), amount, parsed, kept)


def _may_go_on(rest: str) -> bool:
    """Whether what follows a number may still make it a price: a unit, whole or begun
    ("dol"), another digit group, or something that may yet decode or vanish into one
    ("&euro;", "dol&#108;ars", "\\$", "[P9]$", an invisible character)."""
    if not rest or rest[0].isdecimal() or _unsettled(rest[0]) or _SIGN_OR_INVISIBLE.match(rest):
        return True
    if rest[0] in ".,'" and (len(rest) == 1 or rest[1].isdecimal() or _unsettled(rest[1])):
        return True
    written = re.sub(r"\s+", " ", rest.casefold())
    for word in _UNIT_WORDS:
        common = len(os.path.commonprefix([written, word]))  # noqa: RUF071 - strings
        if common == len(written):
            return True  # all of it so far may be this word
        if common == len(word):
            follows = written[common]
            if not (word[-1].isascii() and follows.isascii() and follows.isalpha()):
                return True
        elif common and _unsettled(written[common]):
            return True
    return False


def _unsettled(char: str) -> bool:
    """A character that may decode, or vanish, into another: "&", "\\", "[", "!"."""
    return char in "&\\[!" or _INVISIBLE_RE.match(char) is not None


@functools.lru_cache(maxsize=512)
def _name_pattern(name: str) -> re.Pattern[str]:
    words = [re.escape(word) for word in name.split()]
    pattern = r"\s+".join(words) or re.escape(name)
    if name[:1].isascii() and name[:1].isalnum():
        pattern = f"(?<![A-Za-z0-9]){pattern}"
    if name[-1:].isascii() and name[-1:].isalnum():
        pattern = f"{pattern}(?![A-Za-z0-9])"
    return re.compile(pattern, re.IGNORECASE)


@dataclass
class ReplyGuard:
    """Feed it the model's text piece by piece; it returns what may be shown now."""

    products: dict[int, ProductFacts]
    allowed_amounts: set[Decimal] = field(default_factory=set)
    link: Callable[[ProductFacts], str] = markdown_link
    cited: list[int] = field(default_factory=list)
    corrected: int = 0
    removed: int = 0
    dropped: int = 0  # sentences whose check contradicted what was shown (never expected)
    _pending: str = ""
    _released: int = 0  # characters of `_pending` already shown...
    _sentence_shown: str = ""  # ...and what they were shown as
    _shown: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        """Everything released so far."""
        return "".join(self._shown)

    def feed(self, delta: str) -> str:
        self._pending += delta
        out = []
        while (end := self._sentence_end(self._pending)) is not None:
            sentence = self._pending[:end]
            self._pending = self._pending[end:]
            out.append(self._finish_sentence(sentence))
        safe_end = self._safe_end()
        if safe_end > self._released:
            # Plain text and whole references only: checking it now gives what checking
            # the whole sentence will give for it.
            shown = self.check(self._pending[:safe_end])
            if shown.startswith(self._sentence_shown):
                out.append(shown[len(self._sentence_shown) :])
                self._sentence_shown, self._released = shown, safe_end
        return self._show("".join(out))

    def finish(self) -> str:
        """The rest of the text, checked, once the model has stopped."""
        sentence, self._pending = self._pending, ""
        return self._show(self._finish_sentence(sentence))

    def _safe_end(self) -> int:
        """How much of the current sentence may be shown: up to the first character that
        could start something to rewrite. Whole references are passed (unless "(" follows:
        it may be a link), and so are numbers that turned out not to be prices ("30
        hours", "WH-1000XM5"), so a model number does not hold back its sentence; so are
        "!" not starting an image and "&" not starting a character reference."""
        text, at = self._pending, self._released
        while risky := _RISKY.search(text, at):
            start = risky.start()
            char, following = text[start], text[start + 1 : start + 2]
            if char == "[":
                reference = _REFERENCE.match(text, start)
                if reference is None or reference.end() >= len(text):
                    return start
                if text[reference.end()] == "(":
                    return start
                at = reference.end()
            elif (char == "!" and following and following not in "[&\\") or (
                char == "&" and following.isspace()
            ):
                at = start + 1  # no image, no character reference
            elif char.isdecimal() and not self._after_currency(text[:start]):
                number = _NUMBER_AHEAD.match(text, start)
                if number is None or _may_go_on(text[number.end() :]):
                    return start  # a unit may still follow: this could be a price
                at = number.end()
            else:
                return start
        return len(text)

    def _sentence_end(self, text: str) -> int | None:
        """Where the first whole sentence of `text` ends, if it does yet."""
        for match in _SENTENCE_END.finditer(text):
            if match.group() != "\n" or not self._joinable(text[: match.start()]):
                return match.end()
            following = text[match.end() :].lstrip(" \t")
            if not following:
                return None  # the next line may go on with the price
            if following.startswith("\n"):
                # A paragraph break: markdown does not join them. The blank line's spaces
                # may have been shown already: they end this sentence.
                return len(text) - len(following) + 1
        return None

    def _joinable(self, line: str) -> bool:
        """Whether a line ends as a price may continue on the next one ("$" then "19":
        markdown joins the lines, "$ 19"; "19 US" then "dollars")."""
        plain = self._plain(line)
        if _JOINABLE.search(plain):
            return True
        last_number = _LAST_NUMBER.search(plain)
        return last_number is not None and _may_go_on(last_number.group(1))

    def _after_currency(self, before: str) -> bool:
        return _CURRENCY_BEFORE.search(self._plain(before)) is not None

    def _plain(self, text: str) -> str:
        """`text` as the price check sees it: decoded, references to products not given
        gone (so "$[P9]19" is "$19")."""
        return _REFERENCE.sub(self._unknown_gone, shown_as(text))

    def _unknown_gone(self, match: re.Match[str]) -> str:
        return match.group(0) if int(match.group(1)) in self.products else ""

    def _show(self, text: str) -> str:
        self._shown.append(text)
        return text

    def _finish_sentence(self, sentence: str) -> str:
        shown, self._sentence_shown, self._released = self._sentence_shown, "", 0
        checked = self.check(sentence)
        if checked.startswith(shown):
            return checked[len(shown) :]
        # Text already shown is never rewritten (see the module docstring): rather than
        # show a contradiction, show no more of this sentence.
        self.dropped += 1
        return "\n" if sentence.endswith("\n") else ""

    def check(self, sentence: str) -> str:
        """One whole sentence, with references resolved and prices checked."""
        sentence = self._plain(sentence)
        sentence = _MODEL_LINK.sub(lambda m: m.group(1), sentence)
        sentence = _AUTOLINK.sub(lambda m: m.group(1), sentence)
        sentence = _IMAGE_START.sub(r"\1\\!", sentence)  # "![P1]" must not become an image
        mentions = self._mentions(sentence)
        sentence = self._check_prices(sentence, mentions)
        return _REFERENCE.sub(self._resolve, sentence)

    def _mentions(self, sentence: str) -> list[_Mention]:
        """Where products are named in the sentence: references, and names written out,
        every time. Where names overlap the longest is meant ("Zentro X Pro", not
        "Zentro X"); where equally long ones do, or two products share a name, the
        mention is of all of them."""
        found: dict[tuple[int, int], list[ProductFacts]] = {}
        for m in _REFERENCE.finditer(sentence):
            if (product := self.products.get(int(m.group(1)))) is not None:
                found.setdefault(m.span(), []).append(product)
        for product in self.products.values():
            if product.name.strip():
                for m in _name_pattern(product.name).finditer(sentence):
                    found.setdefault(m.span(), []).append(product)
        chosen: list[_Mention] = []
        for (start, end), products in sorted(found.items(), key=lambda f: f[0][0] - f[0][1]):
            overlapping = [m for m in chosen if m.start < end and start < m.end]
            if not overlapping:
                chosen.append(_Mention(start, end, tuple(products)))
            for mention in overlapping:
                if mention.end - mention.start == end - start:
                    merged = mention.products + tuple(products)
                    chosen[chosen.index(mention)] = _Mention(mention.start, mention.end, merged)
        return sorted(chosen, key=lambda m: m.start)

    def _attribute(
        self, prices: list[_Price], mentions: list[_Mention]
    ) -> list[tuple[ProductFacts, ...]]:
        """The products each price may be about. Prices follow one another with no
        product named between them ("costs $59, down from $79") are about the same
        product; if several were named before them ("the A and the B cost $1 and $2"),
        which price is whose is a guess: each is about all of them."""
        groups: list[tuple[list[_Mention], list[_Price]]] = []
        previous = 0
        for price in prices:
            window = [m for m in mentions if previous <= m.start < price.start]
            if window or not groups:
                groups.append((window, [price]))
            else:
                groups[-1][1].append(price)
            previous = price.end
        about: list[tuple[ProductFacts, ...]] = []
        for window, members in groups:
            named = tuple(p for mention in window for p in mention.products)
            if not window:  # before any product is named: the first named after it
                for price in members:
                    after = [m for m in mentions if m.start >= price.end]
                    about.append(after[0].products if after else ())
            elif len(members) > 1 and len({p.price for p in named}) > 1:
                about += [named] * len(members)
            else:
                about += [window[-1].products] * len(members)
        return about

    def _check_prices(self, sentence: str, mentions: list[_Mention]) -> str:
        prices = _prices(sentence)
        out, at = [], 0
        for price, products in zip(prices, self._attribute(prices, mentions), strict=True):
            fixed = self._fixed(price.readings, products)
            if fixed is not None:
                start, end = price.amount
                out += [sentence[at:start], fixed + price.kept]
                at = end
        return "".join(out) + sentence[at:]

    def _fixed(self, written: frozenset[Decimal], products: tuple[ProductFacts, ...]) -> str | None:
        """What to show instead of a written amount (None: it is right)."""
        if products:
            prices = {p.price for p in products}
            if len(prices) > 1 or not written:  # which product, or which amount, is a guess
                self.removed += 1
                return REMOVED_PRICE
            (price,) = prices
            if written == {price}:
                return None
            self.corrected += 1
            return plain_price(price)
        catalog = {p.price for p in self.products.values()}
        if written and all(w in self.allowed_amounts or w in catalog for w in written):
            return None  # a product's price, or the shopper's own budget, repeated
        self.removed += 1
        return REMOVED_PRICE

    def _resolve(self, match: re.Match[str]) -> str:
        product = self.products.get(int(match.group(1)))
        if product is None:
            return ""  # not a product the model was given: never shown as one
        if product.id not in self.cited:
            self.cited.append(product.id)
        return self.link(product)


def guard_text(products: Iterable[ProductFacts], text: str, allowed: set[Decimal]) -> str:
    """`ReplyGuard` on a whole text at once."""
    guard = ReplyGuard({p.id: p for p in products}, allowed)
    guard.feed(text)
    guard.finish()
    return guard.text
