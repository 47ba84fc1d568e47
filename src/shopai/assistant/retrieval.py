"""Which products a question is about: the assistant's grounding.

Before the model writes a word, the question is turned into a catalog search: price
limits ("under $500", "500元以下") and a category ("headphones", "耳机") become
filters, words like "cheap" or "便宜" order by price, and the rest of the question goes
to the hybrid search, so "something to listen to music on the train" still finds
headphones. The model only ever sees (and may only recommend) what this returns.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation

from sqlalchemy import bindparam, select
from sqlalchemy.orm import lazyload

from ..catalog.models import Category, Product
from ..extensions import db
from ..search.services import SearchFilters, best_ids

CANDIDATES = 5  # products handed to the model: enough to choose, small enough to be fast
POOL = 20  # ranked by relevance before "cheapest first" reorders them

# A number that is not followed by a unit of something else: "2TB", "55 inches",
# "30 hours", "2024" after "from" are sizes and years, not prices.
_NOT_A_PRICE_UNIT = (
    r"(?!\s*(?:tb|gb|mb|inch|inches|in\b|\"|hours?|hrs?|h\b|mah|wh\b|w\b|watts?|hz|mm|cm"
    r"|m\b|years?|yrs?|months?|days?|ft|mp\b|fps|%|-inch|nits|g\b|kg|lbs?|oz|寸|英寸|小时|年))"
)
_NUMBER = (
    rf"(\d{{1,3}}(?:,\d{{3}})+|\d+)(?![\d,])(?:\.(\d{{1,2}}))?(?![\d.]){_NOT_A_PRICE_UNIT}\s*(k\b)?"
)
_CURRENCY = r"(?:(?:us\s*)?[$¥￥€£]|usd|rmb|cny|eur)?\s*"
_UNIT = r"\s*(?:dollars?|bucks|usd|元|块钱?|美元|刀)?"
# A currency sign or word somewhere in the phrase: needed where a bare number is too
# often something else ("from 2024", "iPhone 14-15").
_MARKER = re.compile(r"[$¥￥€£]|usd|rmb|cny|eur|dollar|buck|元|块|美元|刀", re.IGNORECASE)
_MAX_PATTERNS = (
    (
        r"\b(?:under|below|less than|cheaper than|up to|at most|max(?:imum)?|no more than|within)"
        rf"\s+{_CURRENCY}{_NUMBER}{_UNIT}",
        False,
    ),
    (rf"(?:低于|少于|不超过|不到|便宜于|小于)\s*{_CURRENCY}{_NUMBER}{_UNIT}", False),
    (rf"{_CURRENCY}{_NUMBER}{_UNIT}\s*(?:以下|以内|之内|或更少)", False),
    (rf"<\s*{_CURRENCY}{_NUMBER}", False),
)
_MIN_PATTERNS = (
    (rf"\b(?:over|above|more than|at least)\s+{_CURRENCY}{_NUMBER}{_UNIT}", False),
    (rf"\b(?:from|starting at)\s+{_CURRENCY}{_NUMBER}{_UNIT}", True),
    (rf"(?:高于|超过|不低于|至少)\s*{_CURRENCY}{_NUMBER}{_UNIT}", False),
    (rf"{_CURRENCY}{_NUMBER}{_UNIT}\s*(?:以上|或更多)", False),
    (rf">\s*{_CURRENCY}{_NUMBER}", False),
)
_BETWEEN_PATTERNS = (
    (rf"\bbetween\s+{_CURRENCY}{_NUMBER}{_UNIT}\s+and\s+{_CURRENCY}{_NUMBER}{_UNIT}", False),
    (
        rf"{_CURRENCY}{_NUMBER}{_UNIT}\s*(?:-|\u2013|to|到|至)\s*{_CURRENCY}{_NUMBER}{_UNIT}"
        r"(?=\s|$|[^\w.])",
        True,
    ),
)
CHEAP_WORDS = (
    "cheap",
    "cheapest",
    "cheaper",
    "budget",
    "affordable",
    "inexpensive",
    "low cost",
    "low-cost",
    "便宜",
    "实惠",
    "性价比",
    "划算",
)
# Words that frame a question rather than describe a product. Full-text search wants
# every word it is given, so "can you recommend some cheap headphones?" is searched as
# "headphones".
FILLER_WORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "any",
        "are",
        "can",
        "could",
        "do",
        "does",
        "find",
        "for",
        "get",
        "give",
        "good",
        "great",
        "have",
        "i",
        "im",
        "i'm",
        "is",
        "it",
        "looking",
        "me",
        "my",
        "need",
        "nice",
        "please",
        "recommend",
        "some",
        "something",
        "suggest",
        "the",
        "there",
        "to",
        "want",
        "what",
        "which",
        "with",
        "would",
        "you",
        "your",
        "show",
        "best",
        "buy",
        "one",
        "ones",
    ]
)
CJK_FILLER = (
    "我想买",
    "我想要",
    "我要",
    "我想",
    "推荐",
    "有没有",
    "有什么",
    "什么",
    "一个",
    "一款",
    "的",
    "吗",
    "呢",
    "请",
)
# Chinese shopping words and their English, for a Chinese question about a catalog
# written in English (the embeddings model reads English only). Tried after the
# Chinese words themselves, which find products named in Chinese.
CJK_GLOSSARY: dict[str, str] = {
    "降噪": "noise cancelling",
    "无线": "wireless",
    "蓝牙": "bluetooth",
    "游戏": "gaming",
    "电竞": "gaming",
    "运动": "sport",
    "学生": "student",
    "便携": "portable",
    "儿童": "kids",
    "防水": "waterproof",
    "机械": "mechanical",
    "轻薄": "thin light",
    "充电": "charging",
    "快充": "fast charger",
    "智能": "smart",
    "头戴": "over-ear",
    "入耳": "in-ear",
    "摄影": "photo",
}
# Chinese names of the demo catalog's categories (a shop with Chinese category names
# is matched on the names themselves).
CATEGORY_ALIASES: dict[str, tuple[str, ...]] = {
    "Cameras": ("camera", "相机", "镜头"),
    "Chargers & Power": ("charger", "power bank", "充电器", "充电宝", "移动电源"),
    "Computer Accessories": ("keyboard", "mouse", "webcam", "键盘", "鼠标"),
    "Drones": ("drone", "无人机"),
    "Gaming": ("gaming", "console", "游戏"),
    "Headphones": ("headphone", "earbud", "headset", "耳机"),
    "Laptops": ("laptop", "notebook", "笔记本"),
    "Monitors": ("monitor", "显示器"),
    "Networking": ("router", "mesh", "路由器", "网络"),
    "Printers & Scanners": ("printer", "scanner", "打印机", "扫描仪"),
    "Smart Home": ("smart home", "智能家居"),
    "Smartphones": ("smartphone", "phone", "手机"),
    "Smartwatches & Wearables": ("smartwatch", "watch", "wearable", "手表", "手环"),
    "Speakers": ("speaker", "soundbar", "音箱", "音响"),
    "Storage": ("ssd", "hard drive", "storage", "硬盘", "存储"),
    "Tablets": ("tablet", "ipad", "e-reader", "平板"),
    "Televisions": ("tv", "television", "电视"),
}


@dataclass(frozen=True)
class Constraints:
    """What the question asks of the products besides its words."""

    min_price: Decimal | None = None
    max_price: Decimal | None = None
    category: Category | None = None
    cheapest_first: bool = False
    phrase: str = ""  # the question without its price phrases, for search by meaning


@dataclass(frozen=True)
class Retrieval:
    query: str  # the words searched for, constraints removed
    constraints: Constraints
    products: list[Product]


def _amount(whole: str, cents: str | None, thousands: str | None) -> Decimal | None:
    try:
        value = Decimal(whole.replace(",", "") + (f".{cents}" if cents else ""))
    except InvalidOperation:
        return None
    return value * 1000 if thousands else value


def _take(patterns: tuple[tuple[str, bool], ...], text: str) -> tuple[list[Decimal], str]:
    """The amounts the first matching pattern names, and the text without that phrase.
    A pattern marked as needing a marker only counts with a currency sign or word."""
    for pattern, needs_marker in patterns:
        for match in re.finditer(pattern, text, re.IGNORECASE):
            if needs_marker and not _MARKER.search(match.group(0)):
                continue
            groups = match.groups()
            amounts = [
                amount
                for i in range(0, len(groups), 3)
                if groups[i] and (amount := _amount(*groups[i : i + 3])) is not None
            ]
            return amounts, text[: match.start()] + " " + text[match.end() :]
    return [], text


def _category(text: str) -> Category | None:
    """The category a question names: by its own name, or by a word for it."""
    lowered = text.casefold()
    categories = db.session.scalars(select(Category)).all()
    for category in categories:
        if category.name.casefold() in lowered:
            return category
    by_name = {category.name: category for category in categories}
    for name, aliases in CATEGORY_ALIASES.items():
        if name not in by_name:
            continue
        for alias in aliases:
            # An English word matches with an optional plural; CJK inside any run.
            pattern = re.escape(alias) if not alias.isascii() else rf"\b{re.escape(alias)}s?\b"
            if re.search(pattern, lowered):
                return by_name[name]
    return None


def parse_constraints(question: str) -> tuple[Constraints, str]:
    """The constraints of a question, and the words left to search for."""
    text = question
    amounts, text = _take(_BETWEEN_PATTERNS, text)
    low, high = (min(amounts), max(amounts)) if len(amounts) == 2 else (None, None)
    if high is None:
        maxima, text = _take(_MAX_PATTERNS, text)
        high = maxima[0] if maxima else None
        minima, text = _take(_MIN_PATTERNS, text)
        low = minima[0] if minima else None
    lowered = text.casefold()
    cheapest_first = any(word in lowered for word in CHEAP_WORDS)
    category = _category(text)
    return Constraints(low, high, category, cheapest_first, " ".join(text.split())), _search_words(
        lowered
    )


def _search_words(text: str) -> str:
    for word in sorted(CHEAP_WORDS, key=len, reverse=True):
        text = re.sub(rf"\b{re.escape(word)}\b" if word.isascii() else re.escape(word), " ", text)
    for filler in CJK_FILLER:
        text = text.replace(filler, " ")
    words = re.findall(r"[\w][\w'-]*", text)
    return " ".join(word for word in words if word not in FILLER_WORDS)


def _search(query: str, constraints: Constraints) -> list[int]:
    """The ids of the POOL best products for `query` within the constraints."""
    filters = SearchFilters(
        q=query,
        category=constraints.category,
        min_price=constraints.min_price,
        max_price=constraints.max_price,
    )
    return best_ids(filters, POOL)


# Built once: building and keying it cost as much as running it, for every question.
_PRODUCTS = (
    select(Product)
    .where(Product.id.in_(bindparam("ids", expanding=True)))
    .options(lazyload(Product.images))
)


def _products(ids: list[int]) -> list[Product]:
    """The products of `ids`, in order, with their categories (the prompt names them)
    but not their images: the cards are read after the answer."""
    if not ids:
        return []
    by_id = {product.id: product for product in db.session.scalars(_PRODUCTS, {"ids": ids})}
    return [by_id[pid] for pid in ids if pid in by_id]


def _in_english(words: str) -> str:
    """The glossary's English for the Chinese words in `words`, and nothing else
    (empty, so no search, for a question without any)."""
    return " ".join(english for chinese, english in CJK_GLOSSARY.items() if chinese in words)


def _names_all(words: str, product: Product) -> bool:
    name = product.name.casefold()
    return all(word in name for word in words.split())


def _some_name_holds(words: str) -> bool:
    """Whether some product's name holds every word as `_names_all` reads a name
    (anywhere in it: "watch" in "Smartwatch"), so the search everywhere runs exactly
    when its first result can win. One pass over the names, stopped at the first; the
    full-text index would miss a word inside a longer one."""
    holds = [Product.name.icontains(word, autoescape=True) for word in words.split()]
    return db.session.scalar(select(Product.id).where(*holds).limit(1)) is not None


def retrieve(question: str, earlier_question: str | None = None) -> Retrieval:
    """The products a question is about, best first, at most `CANDIDATES`.

    A question with no subject of its own ("any under $500?") takes the subject of the
    shopper's previous question; a category with no matching words falls back to that
    category's products."""
    constraints, words = parse_constraints(question)
    if earlier_question and not words and constraints.category is None:
        # "any under $500?": the subject is the one of the previous question.
        earlier, earlier_words = parse_constraints(earlier_question)
        words = earlier_words
        constraints = replace(
            constraints,
            category=earlier.category,
            min_price=constraints.min_price or earlier.min_price,
            max_price=constraints.max_price or earlier.max_price,
            phrase=earlier.phrase,
        )
    ids: list[int] = []
    # A question naming a product ("shady earbuds") is searched everywhere, since its
    # category wins over the one its words suggest ("earbuds"). Only a product whose
    # name holds every word can lead that search, so without one (the usual case) the
    # search within the category is the only one.
    if constraints.category is not None and words and _some_name_holds(words):
        anywhere = replace(constraints, category=None)
        products = _candidates(_search(words, anywhere), anywhere)
        if products and _names_all(words, products[0]):
            return _retrieval(words, anywhere, products)
    # The words alone first (full-text wants every word), their English, then the whole
    # phrase, since "something to listen to music on the train" is all meaning.
    for query in (words, _in_english(words), constraints.phrase):
        if ids:
            break
        if query:  # an empty query lists the whole catalog: not an answer
            ids = _search(query, constraints)
    if not ids and constraints.category is not None:
        ids = _search("", constraints)
    return _retrieval(words, constraints, _candidates(ids, constraints))


def _candidates(ids: list[int], constraints: Constraints) -> list[Product]:
    """The products that may become candidates: the first CANDIDATES of `ids` (ranked
    best first), or the whole pool when the cheapest of it come first. Ids of products
    deleted since this process's vectors were read are skipped, and the pool fills in."""
    if constraints.cheapest_first:
        return _products(ids)
    found = _products(ids[:CANDIDATES])
    return found if len(found) == min(CANDIDATES, len(ids)) else _products(ids)


def _retrieval(words: str, constraints: Constraints, products: list[Product]) -> Retrieval:
    """At most CANDIDATES of `products`: the best, or the cheapest if the question asks
    for cheap ones."""
    if constraints.cheapest_first:
        products = sorted(products, key=lambda product: product.price)
    return Retrieval(words, constraints, products[:CANDIDATES])
