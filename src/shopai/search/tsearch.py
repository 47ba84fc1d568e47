"""PostgreSQL's side of `tokens`: the same index text and the same queries, as
`tsvector` and `tsquery` values.

PostgreSQL cannot call the app's Python normaliser from a trigger the way SQLite
calls `shopai_index_text`, and its own parser knows nothing of CJK bigrams or joined
compounds. So the app writes each product's document itself (`pg_index`), built
here from `tokens.index_text`, and queries it with a tsquery built here from the
same terms as `tokens.fts5_query`. Neither goes through PostgreSQL's parser: both
are typed in tsvector / tsquery syntax, lexemes quoted, so no locale, text search
configuration or stray operator in a shopper's query changes what matches.

Lexemes are folded as SQLite's `unicode61 remove_diacritics 2` tokenizer folds them
(lowercase, accents removed, split at anything but letters and digits). Fields are
weighted as FTS5's bm25(10, 1, 4) weighs them: the name `A` (ts_rank's 1.0), the
category `B` (0.4), the description `D` (0.1); "in the name" is weight `A`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from itertools import count

from .tokens import _CJK_RUN, _JOINERS, MIN_PREFIX, _bigrams, index_text, query_terms

NAME, CATEGORY, DESCRIPTION = "A", "B", "D"
MAX_POSITION = 16383  # tsvector positions stop there
MAX_POSITIONS = 256  # per lexeme; PostgreSQL keeps no more
MAX_LEXEME_BYTES = 2046
_LEXEME = re.compile(r"[^\W_]+")
# Matches nothing: `tsquery('')` would match nothing too, with a NOTICE on every query.
NOTHING = "'\x01'"


def fold(text: str) -> str:
    """Lowercase without accents ("Café" -> "cafe"); NFC again, so Hangul syllables
    (which NFKD splits into jamo) come back whole."""
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(c for c in decomposed if unicodedata.category(c) != "Mn")
    return unicodedata.normalize("NFC", stripped).lower()


def lexemes(text: str) -> list[str]:
    return [
        lexeme for lexeme in _LEXEME.findall(fold(text)) if len(lexeme.encode()) <= MAX_LEXEME_BYTES
    ]


def _quote(lexeme: str) -> str:
    return "'" + lexeme.replace("\\", "\\\\").replace("'", "''") + "'"


def document(name: str, category: str, description: str) -> str:
    """A product's tsvector, in tsvector syntax: every lexeme of the index text of each
    field, with its positions and the field's weight."""
    positions: dict[str, list[str]] = {}
    position = count(1)
    for text, weight in ((name, NAME), (category, CATEGORY), (description, DESCRIPTION)):
        for lexeme in lexemes(index_text(text)):
            at = min(next(position), MAX_POSITION)
            seen = positions.setdefault(lexeme, [])
            if len(seen) < MAX_POSITIONS:
                seen.append(f"{at}{weight}")
    return " ".join(f"{_quote(lexeme)}:{','.join(at)}" for lexeme, at in positions.items())


def _lexeme(lexeme: str, prefix: bool, weight: str) -> str:
    label = ("*" if prefix else "") + weight
    return _quote(lexeme) + (":" + label if label else "")


def _phrase(term: str, prefix: bool, weight: str) -> str | None:
    """One quoted FTS5 term: its lexemes in a row, the last a prefix if `prefix`."""
    words = lexemes(term)
    if not words:
        return None
    parts = [_lexeme(word, False, weight) for word in words[:-1]]
    parts.append(_lexeme(words[-1], prefix, weight))
    return " <-> ".join(parts) if len(parts) > 1 else parts[0]


def _all(parts: Iterable[str | None]) -> str | None:
    """AND; as in FTS5, a term with no letters or digits ("_") matches nothing, so
    neither does a conjunction holding it (None)."""
    kept = []
    for part in parts:
        if part is None:
            return None
        kept.append(part)
    if not kept:
        return None
    return kept[0] if len(kept) == 1 else "(" + " & ".join(kept) + ")"


def _any(parts: Iterable[str | None]) -> str | None:
    kept = [part for part in parts if part]
    if not kept:
        return None
    return kept[0] if len(kept) == 1 else "(" + " | ".join(kept) + ")"


def _word(word: str, weight: str) -> str | None:
    return _phrase(word, len(word) >= MIN_PREFIX, weight)


def _cjk(run: str, weight: str) -> str | None:
    """Every character of the run covered by a bigram the product holds (as in FTS5)."""
    if len(run) == 1:
        return _phrase(run, True, weight)
    grams = _bigrams(run)
    covers = []
    for i in range(len(run)):
        around = sorted({grams[j] for j in (i - 1, i) if 0 <= j < len(grams)})
        covers.append(_any(_phrase(gram, False, weight) for gram in around))
    return _all(dict.fromkeys(covers))


def _compound(compound: str, weight: str) -> str | None:
    """ "wi-fi" finds both "Wi-Fi" (its parts) and "WiFi" (joined)."""
    parts = _all(_word(part, weight) for part in _JOINERS.split(compound) if part)
    return _any([parts, _word(_JOINERS.sub("", compound), weight)])


def _query(q: str, weight: str) -> str | None:
    parts = []
    for term in query_terms(q):
        if _CJK_RUN.fullmatch(term):
            parts.append(_cjk(term, weight))
        elif _JOINERS.search(term):
            parts.append(_compound(term, weight))
        else:
            parts.append(_word(term, weight))
    return _all(parts)


def tsquery(q: str) -> tuple[str, str, str]:
    """tsqueries for every field, for the name alone, and for every field but not the
    name alone: the three FTS5 expressions of `keyword.Words`, for PostgreSQL."""
    every_field = _query(q, "")
    in_names = _query(q, NAME)
    if every_field is None or in_names is None:
        return NOTHING, NOTHING, NOTHING
    return every_field, in_names, f"{every_field} & !({in_names})"
