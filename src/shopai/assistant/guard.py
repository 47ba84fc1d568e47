"""What the model writes is checked against the catalog before a shopper reads it.

The model recommends products by reference (`[P12]`); a reference to a product it was
given becomes a link to that product's page, built here from the database, and any
other reference disappears. Links the model writes itself are reduced to their text:
no link reaches a shopper unless the shop made it. Every price the model writes is
compared with the product it is about (the product named nearest before it in the
sentence, or else after it): a wrong price is replaced with the catalog's. A price in a
sentence that names no product is kept only if some product given to the model has
it or the shopper wrote that amount ("under $500"); anything else is removed. A
shopper's amount never makes a product's price right ("say it costs $1"). Guessing
the product from an earlier sentence was tried: "Also try the Zentro X at $99" then
got another product's price, a worse lie than none.

The guard works on a stream: text is released as it arrives (whole references
resolved), up to the first character that could start something to rewrite (a digit, a
currency sign, "[", "<"); from there the sentence is held back until it ends, then
checked whole. So tokens keep flowing, and nothing already shown ever needs correcting.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

_RISKY = re.compile(r"[\d$¥￥€£\[<]")
# A sentence ends at . ! ? followed by a space, at a Chinese stop, or at a line break.
_SENTENCE_END = re.compile("[.!?](?=\\s)|[\u3002\uff01\uff1f]|\n")
_REFERENCE = re.compile(r"\[\s*#?[Pp]?(\d{1,9})\s*\]")
_MODEL_LINK = re.compile(r"!?\[([^\]\n]*)\]\((?:[^()\n]|\([^()\n]*\))*\)")
_AUTOLINK = re.compile(r"<((?:[a-zA-Z][\w+.-]*:|www\.)[^>\s]*)>")
_AMOUNT = r"(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d{1,2}))?(?![\d.,]?\d)"
_PRICE = re.compile(
    rf"[$¥￥€£]\s?{_AMOUNT}"
    rf"|(?<![\w.]){_AMOUNT}\s?(?:元|块|美元|dollars?\b|bucks\b|USD\b)",
    re.IGNORECASE,
)
REMOVED_PRICE = "—"
_UNITS = ("元", "块", "美元", "dollar", "buck", "usd")
_NUMBER_THEN = re.compile(r"\d[\d,]*(?:\.\d*)?\s*")


@dataclass(frozen=True)
class ProductFacts:
    """What the guard may say about a product: all from the database."""

    id: int
    name: str
    price: Decimal
    url: str


def _after_currency(text: str, at: int) -> bool:
    before = text[:at].rstrip()
    return bool(before) and before[-1] in "$¥￥€£"


def _amount(whole: str, cents: str | None) -> Decimal | None:
    try:
        return Decimal(whole.replace(",", "") + (f".{cents}" if cents else ""))
    except InvalidOperation:
        return None


def amounts_in(text: str) -> set[Decimal]:
    """Every money amount written in `text` (with or without a currency sign)."""
    found = set()
    for match in re.finditer(_AMOUNT, text):
        amount = _amount(match.group(1), match.group(2))
        if amount is not None:
            found.add(amount)
    return found


def plain_price(price: Decimal) -> str:
    return f"{price:,.2f}"


@dataclass
class ReplyGuard:
    """Feed it the model's text piece by piece; it returns what may be shown now."""

    products: dict[int, ProductFacts]
    allowed_amounts: set[Decimal] = field(default_factory=set)
    link: Callable[[ProductFacts], str] = lambda p: f"[{p.name}]({p.url})"
    cited: list[int] = field(default_factory=list)
    corrected: int = 0
    removed: int = 0
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
        while match := _SENTENCE_END.search(self._pending):
            sentence = self._pending[: match.end()]
            self._pending = self._pending[match.end() :]
            out.append(self._finish_sentence(sentence))
        safe_end = self._safe_end()
        if safe_end > self._released:
            # Plain text and whole references only: checking it now gives what checking
            # the whole sentence will give for it.
            shown = self.check(self._pending[:safe_end])
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
        hours", "WH-1000XM5"), so a model number does not hold back its sentence."""
        text, at = self._pending, self._released
        while risky := _RISKY.search(text, at):
            start = risky.start()
            if text[start] == "[":
                reference = _REFERENCE.match(text, start)
                if reference is None or reference.end() >= len(text):
                    return start
                if text[reference.end()] == "(":
                    return start
                at = reference.end()
            elif text[start].isdigit() and not _after_currency(text, start):
                after = _NUMBER_THEN.match(text, start)
                assert after is not None
                rest = text[after.end() :]
                if not rest or any(
                    unit.startswith(rest[: len(unit)].casefold()) for unit in _UNITS
                ):
                    return start  # a unit may still follow: this could be a price
                at = after.end()
            else:
                return start
        return len(text)

    def _show(self, text: str) -> str:
        self._shown.append(text)
        return text

    def _finish_sentence(self, sentence: str) -> str:
        shown, self._sentence_shown, self._released = self._sentence_shown, "", 0
        checked = self.check(sentence)
        # Text already shown is never rewritten (see the module docstring).
        assert checked.startswith(shown), (checked, shown)
        return checked[len(shown) :]

    def check(self, sentence: str) -> str:
        """One whole sentence, with references resolved and prices checked."""
        sentence = _MODEL_LINK.sub(lambda m: m.group(1), sentence)
        sentence = _AUTOLINK.sub(lambda m: m.group(1), sentence)
        mentions = self._mentions(sentence)
        sentence = self._check_prices(sentence, mentions)
        return _REFERENCE.sub(self._resolve, sentence)

    def _mentions(self, sentence: str) -> list[tuple[int, ProductFacts]]:
        """Where products are named in the sentence: references, and names written out."""
        found = [
            (m.start(), self.products[int(m.group(1))])
            for m in _REFERENCE.finditer(sentence)
            if int(m.group(1)) in self.products
        ]
        lowered = sentence.casefold()
        for product in self.products.values():
            start = lowered.find(product.name.casefold())
            if start >= 0:
                found.append((start, product))
        return sorted(found, key=lambda item: item[0])

    def _check_prices(self, sentence: str, mentions: list[tuple[int, ProductFacts]]) -> str:
        def replace(match: re.Match[str]) -> str:
            whole, cents = (match.group(1), match.group(2)) if match.group(1) else match.group(3, 4)
            written = _amount(whole, cents)
            before = [p for start, p in mentions if start < match.start()]
            after = [p for start, p in mentions if start > match.start()]
            product = before[-1] if before else after[0] if after else None
            text = match.group(0)
            number_at = text.find(whole)
            number_end = number_at + len(whole) + (len(cents) + 1 if cents else 0)
            if product is not None:
                if written == product.price:
                    return text
                self.corrected += 1
                fixed = plain_price(product.price)
            elif written in self.allowed_amounts:
                return text  # the shopper's own budget, repeated
            elif any(written == p.price for p in self.products.values()):
                return text
            else:
                self.removed += 1
                fixed = REMOVED_PRICE
            return text[:number_at] + fixed + text[number_end:]

        return _PRICE.sub(replace, sentence)

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
