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
