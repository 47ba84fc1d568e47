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


MAX_ID_DIGITS = 18  # fits a signed 64-bit integer


def as_id(key: str | int) -> int | None:
    """`key` as a database id if it is one ("42"), else None ("42-slug", "²", 10**30)."""
    if isinstance(key, int):
        return key if 0 < key < 10**MAX_ID_DIGITS else None
    if key.isascii() and key.isdigit() and len(key) <= MAX_ID_DIGITS:
        return int(key)
    return None


def name_key(name: str) -> str:
    """What makes two names the same: case and Unicode form ignored ("Éclair" = "éclair")."""
    return " ".join(unicodedata.normalize("NFKC", name).casefold().split())


def clean_text(text: str) -> str:
    """Multi-line text as stored: browsers send CRLF from textareas."""
    return text.replace("\r\n", "\n").replace("\r", "\n").strip()
