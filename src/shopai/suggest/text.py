"""How suggestion text is compared: one normalization, one word splitter, one highlighter.

`normalize_query` is what every stored query and suggestion goes through (popular
searches, clicks, model-made shopper queries, expansions), so "Wireless  Headphones"
and "wireless headphones" are one row and one suggestion.

Matching splits text into words the way the full-text index does (search.tokens):
letters and digits runs, with CJK runs apart, so "usb-c" and "usb c" are the same
two words. Latin accents are folded for matching only ("cafe" finds "café").
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from rapidfuzz.distance import OSA

from ..search.tokens import _CJK, MAX_QUERY_TERMS
from ..text import BIDI_CONTROLS

MAX_QUERY_CHARS = 100
TYPO_MIN_LETTERS = 5  # words this long (or longer) may differ by one edit

_INVISIBLE = re.compile("[\u200b\u2060\ufeff\u180e" + "".join(BIDI_CONTROLS) + "]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# A word as the full-text index splits it: a CJK run, or letters and digits.
_WORD = re.compile(rf"[{_CJK}]+|[^\W{_CJK}_]+")
_CJK_ONLY = re.compile(f"[{_CJK}]+")

Span = tuple[int, int]


def normalize_query(text: str) -> str:
    """A shopper's query as stored and compared: NFKC, case-folded, invisible and
    control characters dropped, blanks collapsed, at most `MAX_QUERY_CHARS`."""
    text = unicodedata.normalize("NFKC", text)
    text = unicodedata.normalize("NFKC", text.casefold())
    text = _CONTROL.sub(" ", _INVISIBLE.sub("", text))
    return " ".join(text.split())[:MAX_QUERY_CHARS].rstrip()


def fold(word: str) -> str:
    """`word` (already normalized) with the accents of Latin letters removed, as the
    full-text index does; other scripts are left alone (their marks are letters)."""
    if word.isascii():
        return word
    kept: list[str] = []
    for char in unicodedata.normalize("NFD", word):
        if unicodedata.category(char) == "Mn" and kept and kept[-1] < "\u0250":
            continue
        kept.append(char)
    return unicodedata.normalize("NFC", "".join(kept))


def is_cjk(word: str) -> bool:
    return bool(_CJK_ONLY.fullmatch(word))


def match_words(text: str) -> list[str]:
    """The words of normalized `text`, folded: what matching compares."""
    return [fold(word) for word in _WORD.findall(text)][:MAX_QUERY_TERMS]


def match_key(text: str) -> str:
    """Normalized `text` as one comparable string: its words joined by single spaces."""
    return " ".join(fold(word) for word in _WORD.findall(text))


def expansion_key(query: str) -> str:
    """What makes two settled queries the same question for the model: their words
    ("usb-c hub", "USB c hub!" and "usb.c hub" are one)."""
    return match_key(normalize_query(query))


@dataclass(frozen=True)
class _TextWord:
    key: str  # normalized and folded
    start: int  # offsets into the original text
    end: int
    same_length: bool  # key and original have the same length: offsets map one to one


def _text_words(text: str) -> list[_TextWord]:
    words = []
    for match in _WORD.finditer(text):
        original = match.group()
        key = fold(normalize_query(original))
        words.append(_TextWord(key, match.start(), match.end(), len(key) == len(original)))
    return words


def within_one_edit(typed: str, word: str, *, prefix: bool) -> bool:
    """Whether `typed` (5+ letters) is one edit from `word`, or from a beginning of it
    when `prefix` (the shopper may still be typing)."""
    if len(typed) < TYPO_MIN_LETTERS or is_cjk(typed):
        return False
    if OSA.distance(typed, word, score_cutoff=1) <= 1:
        return True
    if not prefix:
        return False
    size = len(typed)
    return any(
        OSA.distance(typed, word[:length], score_cutoff=1) <= 1
        for length in (size - 1, size, size + 1)
        if 0 < length < len(word)
    )


def _match(typed: str, word: _TextWord, typos: bool) -> tuple[int, Span] | None:
    """How well `typed` matches `word` (0 the whole word, 1 its beginning, 2 inside a
    CJK run, 3 one edit away) and the part matched, as offsets into the original text."""
    key = word.key
    whole = (word.start, word.end)
    if key == typed:
        return 0, whole
    if key.startswith(typed):
        return 1, ((word.start, word.start + len(typed)) if word.same_length else whole)
    if is_cjk(typed) and len(typed) >= 2 and typed in key:
        if not word.same_length:
            return 2, whole
        at = word.start + key.index(typed)
        return 2, (at, at + len(typed))
    if typos and within_one_edit(typed, key, prefix=True):
        if len(key) <= len(typed) + 1 or not word.same_length:
            return 3, whole
        return 3, (word.start, word.start + len(typed))
    return None


def _assign(
    text: str, query_words: Sequence[str], *, every: bool, typos: bool
) -> list[Span] | None:
    """Each query word matched to its best unused word of `text`, best first: the whole
    word, then a beginning, a CJK run, a typo. With `every`, None when one matches
    nothing; otherwise such words are skipped."""
    words = _text_words(text)
    used: set[int] = set()
    spans: list[Span] = []
    for typed in query_words:
        best: tuple[int, int, Span] | None = None
        for index, word in enumerate(words):
            if index in used or (found := _match(typed, word, typos)) is None:
                continue
            if best is None or found[0] < best[0]:
                best = (found[0], index, found[1])
        if best is not None:
            used.add(best[1])
            spans.append(best[2])
        elif every:
            return None
    return spans


def highlight(text: str, query_words: Sequence[str], *, typos: bool = False) -> list[list[int]]:
    """[start, end) character offsets (Unicode code points, not UTF-16 units) of the
    parts of `text` that the query's words match: a word, its beginning (a prefix
    still being typed), a CJK run inside a longer one, or a word one edit away (5+
    letters, only with `typos`). Each text word serves one query word; spans are
    sorted and merged."""
    merged: list[list[int]] = []
    for start, end in sorted(_assign(text, query_words, every=False, typos=typos) or []):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return merged


def matches_all(text: str, query_words: Sequence[str]) -> bool:
    """Whether every query word matches a different word of `text` (any order), as a
    whole word, a beginning or (CJK) inside a run."""
    return _assign(text, query_words, every=True, typos=False) is not None
