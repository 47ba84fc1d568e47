"""How text becomes search tokens: one place, for the index and for the queries.

SQLite's `unicode61` tokenizer splits on spaces and punctuation only, which fails
two kinds of shop text:

- Chinese and Japanese write words without spaces, so "索尼无线降噪耳机" is one
  token and a search for "降噪" finds nothing. CJK runs are indexed as overlapping
  character bigrams ("索尼 尼无 无线 ..."), the approach of Lucene's CJK analyzer:
  no dictionary to keep, and a two-character word always matches inside a run. A
  query run matches when every one of its characters is covered by one of its
  bigrams found in the product ("无线耳机" finds 无线…耳机 across "降噪").
- Shoppers join or split compounds: "wifi" for "Wi-Fi", "usbc" for "USB-C". The
  index keeps the parts and adds the joined form, so both spellings meet.

Accents are folded by the tokenizer itself (`remove_diacritics 2`).
"""

from __future__ import annotations

import re
import unicodedata

MAX_QUERY_TERMS = 12
MIN_PREFIX = 2  # one-letter prefixes would match most of the index; they match whole words

# Han (with extensions and compatibility ideographs), kana, Hangul syllables.
_CJK = (
    "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
    "\U00020000-\U0002ebef\U00030000-\U0003134f"
)
_CJK_RUN = re.compile(f"[{_CJK}]+")
# Words joined by hyphens (ASCII or typographic), dots or slashes: "Wi-Fi", "USB-C",
# "802.11ax", "A/V".
_JOINER = "\\-\u2010\u2011./"
_COMPOUND = re.compile(rf"[^\W{_CJK}_]+(?:[{_JOINER}][^\W{_CJK}_]+)+")
_TOKEN = re.compile(rf"[{_CJK}]+|[^\W{_CJK}]+")
# What a query is made of: compounds first, so "wi-fi" stays one term.
_QUERY_TERM = re.compile(rf"{_COMPOUND.pattern}|{_TOKEN.pattern}")
_JOINERS = re.compile(f"[{_JOINER}]")


def _bigrams(run: str) -> list[str]:
    if len(run) == 1:
        return [run]
    return [run[i : i + 2] for i in range(len(run) - 1)]


def index_text(text: str | None) -> str:
    """`text` as the full-text index stores it (registered in SQLite as
    `shopai_index_text`, so the catalog's triggers use exactly this)."""
    if not text:
        return ""
    text = unicodedata.normalize("NFKC", text)
    joined = [_JOINERS.sub("", compound) for compound in _COMPOUND.findall(text)]
    pieces = []
    for match in _TOKEN.finditer(text):
        token = match.group()
        pieces.extend(_bigrams(token) if _CJK_RUN.fullmatch(token) else [token])
    return " ".join(pieces + joined)


def _quoted(term: str) -> str:
    # Each term is quoted, so FTS5 operators typed by a shopper ("NOT", "*", quotes,
    # column filters) are plain text.
    return '"{}"'.format(term.replace('"', '""'))


def _cjk_query(run: str) -> str:
    """Every character of the run covered by a bigram the product contains."""
    if len(run) == 1:
        return _quoted(run) + "*"
    grams = _bigrams(run)
    covers = []
    for i in range(len(run)):
        around = {grams[j] for j in (i - 1, i) if 0 <= j < len(grams)}
        covers.append("(" + " OR ".join(_quoted(g) for g in sorted(around)) + ")")
    return " AND ".join(dict.fromkeys(covers))


def query_terms(q: str) -> list[str]:
    """The shopper's words, compounds ("wi-fi") and CJK runs, at most `MAX_QUERY_TERMS`."""
    return _QUERY_TERM.findall(unicodedata.normalize("NFKC", q))[:MAX_QUERY_TERMS]


def _word_query(word: str) -> str:
    return _quoted(word) + ("*" if len(word) >= MIN_PREFIX else "")


def _compound_query(compound: str) -> str:
    """ "wi-fi" finds both "Wi-Fi" (its parts) and "WiFi" (joined)."""
    parts = " AND ".join(_word_query(part) for part in _JOINERS.split(compound) if part)
    return f"(({parts}) OR {_word_query(_JOINERS.sub('', compound))})"


def fts5_query(q: str) -> str:
    """An FTS5 MATCH expression for a shopper's query: all terms must match; words of
    two or more letters match as prefixes, since the shopper may still be typing."""
    parts = []
    for term in query_terms(q):
        if _CJK_RUN.fullmatch(term):
            parts.append(_cjk_query(term))
        elif _JOINERS.search(term):
            parts.append(_compound_query(term))
        else:
            parts.append(_word_query(term))
    return " AND ".join(parts)
