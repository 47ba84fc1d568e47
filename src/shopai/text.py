"""Small text helpers shared by the catalog and search."""

from __future__ import annotations

import re
import unicodedata

_NON_WORD = re.compile(r"[^\w]+")
_WORD = re.compile(r"\w+")


def slugify(text: str, fallback: str = "item") -> str:
    """A URL slug that keeps non-Latin letters, so "Наушники" is not reduced to nothing."""
    normalized = unicodedata.normalize("NFKC", text).casefold()
    slug = _NON_WORD.sub("-", normalized).replace("_", "-").strip("-")
    slug = re.sub(r"-{2,}", "-", slug)
    return slug[:80].rstrip("-") or fallback


def words(text: str, limit: int = 12) -> list[str]:
    """The search words in a shopper's query, at most `limit` of them."""
    return _WORD.findall(unicodedata.normalize("NFKC", text))[:limit]


# The largest id the tables hold: their keys are INTEGER, 32 bits on PostgreSQL (SQLite's
# are 64). A larger number in a URL names nothing; sent to PostgreSQL it would be an error.
MAX_ID = 2**31 - 1


def as_id(key: str | int) -> int | None:
    """`key` as a database id if it is one ("42"), else None ("42-slug", "²", 10**30)."""
    if isinstance(key, str):
        if not (key.isascii() and key.isdigit()) or len(key) > len(str(MAX_ID)):
            return None
        key = int(key)
    return key if 0 < key <= MAX_ID else None


def name_key(name: str) -> str:
    """What makes two names the same: case and Unicode form ignored ("Éclair" = "éclair")."""
    return " ".join(_ZERO_WIDTH.sub("", unicodedata.normalize("NFKC", name)).casefold().split())


# Marks that reorder text on screen: "\u202egnp.exe" displays as "exe.png".
BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f"  # direction marks
    "\u202a\u202b\u202c\u202d\u202e"  # embeddings and overrides
    "\u2066\u2067\u2068\u2069"  # isolates
)
_VISIBLE_CATEGORIES = ("L", "N", "P", "S")
# Letters and symbols that draw nothing: Hangul fillers, the blank Braille pattern.
INVISIBLE_GRAPHICS = frozenset("\u115f\u1160\u3164\uffa0\u2800")
# Zero-width characters with no job inside a name: they only make two names that look
# the same compare different. (ZWJ and ZWNJ stay: emoji and several scripts need them.)
_ZERO_WIDTH = re.compile("[\u200b\u2060\ufeff\u180e]")


def clean_name(name: str) -> str:
    """A name as stored, or `ValueError` with a message fit for the form.

    Blanks are collapsed. A name must show something: only zero-width characters,
    control characters (NUL breaks PostgreSQL text) or direction overrides (which
    disguise a name) are refused, while joiners inside real words stay (Persian,
    Hindi and emoji need them).
    """
    name = " ".join(_ZERO_WIDTH.sub("", name).split())
    if any(unicodedata.category(ch) == "Cc" for ch in name):
        raise ValueError("Names cannot contain control characters.")
    if any(ch in BIDI_CONTROLS for ch in name):
        raise ValueError("Names cannot contain text-direction controls.")
    name = _strip_format_characters(name)
    if not any(_visible(ch) for ch in name):
        raise ValueError("A name needs visible characters.")
    return name


def _visible(ch: str) -> bool:
    return unicodedata.category(ch).startswith(_VISIBLE_CATEGORIES) and ch not in INVISIBLE_GRAPHICS


def _strip_format_characters(name: str) -> str:
    """Zero-width characters at either end (invisible, yet they make names differ)."""
    start, end = 0, len(name)
    while start < end and unicodedata.category(name[start]) == "Cf":
        start += 1
    while end > start and unicodedata.category(name[end - 1]) == "Cf":
        end -= 1
    return name[start:end].strip()


_STORED_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def clean_text(text: str) -> str:
    """Multi-line text as stored: browsers send CRLF from textareas, and control
    characters other than newlines and tabs have no place in a description."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _STORED_CONTROLS.sub("", text).strip()
