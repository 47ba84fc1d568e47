"""Suggestion candidates in memory: found by the beginning of their words, best first.

A `PhraseIndex` keeps every candidate's match key (its words, folded, joined by single
spaces) in one sorted list, so "all candidates whose words begin with the typed
words" is one binary search: "wireless hea" is a string prefix of "wireless
headphones", and because the query's earlier words are followed by a space they
must be whole words. A sparse table over the candidates' weights then gives the
best few of any such range in O(k log k), however many candidates it holds ("wi"
may cover thousands), so the cost of a keystroke does not grow with the catalog.

Typos are looked up in the index's vocabulary (every word of every candidate) with
rapidfuzz: one edit (a swap of two neighbouring letters counts as one) for words of 5+ letters.
"""

from __future__ import annotations

import heapq
import re
from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from rapidfuzz import process
from rapidfuzz.distance import OSA

from .text import TYPO_MIN_LETTERS, is_cjk, match_key, normalize_query

SOURCE_PRIORITY = {"catalog": 0, "ai": 1}  # one text from two sources: the catalog's wins
LEADING_WORDS = 8  # leading phrases of a name: its first 1..8 words
SHINGLE_WORDS = 3  # and every run of 1..3 words ("wireless headphones")
MAX_ALTERNATIVES = 3  # corrections tried per misspelt word
_TOP = "\U0010ffff"

# A word with its inner joiners, as written in a name: "usb-c", "5.1k", "wi-fi", "o'neil".
_GROUP = re.compile(r"[^\W_]+(?:[-\u2010\u2011./'\u2019][^\W_]+)*")
_LETTER = re.compile(r"[^\W\d_]")
# Words a phrase cut out of a name must not begin or end with: "camera with" and
# "usb-c to" are not searches anyone means.
STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "as",
        "at",
        "by",
        "for",
        "from",
        "in",
        "into",
        "of",
        "on",
        "or",
        "per",
        "the",
        "to",
        "vs",
        "via",
        "with",
        "without",
        "x",
    ]
)


class Entry(NamedTuple):
    text: str  # normalized, as shown
    source: str  # "catalog" | "ai" | "popular"
    weight: int  # how many products (or submissions) stand behind it
    product_id: int | None = None  # a product whose name holds it (catalog phrases)


@dataclass(frozen=True)
class Alternative:
    """One reading of a typed word: itself, a correction, or (CJK) a run containing it."""

    word: str
    complete: bool  # a whole word (else the beginning of one)
    edits: int


def _rank(entry: Entry, key: str) -> int:
    """Order within a range: more products first, then shorter (more general) text."""
    return entry.weight * 256 + 255 - min(len(key), 255)


def _sparse_table(weights: np.ndarray) -> list[np.ndarray]:
    """table[j][i]: the position of the largest weight in [i, i + 2**j)."""
    size = len(weights)
    table = [np.arange(size, dtype=np.int32)]
    span = 1
    while span * 2 <= size:
        previous = table[-1]
        left = previous[: size - 2 * span + 1]
        right = previous[span : size - span + 1]
        table.append(np.where(weights[left] >= weights[right], left, right).astype(np.int32))
        span *= 2
    return table


class PhraseIndex:
    def __init__(self, entries: dict[str, Entry]) -> None:
        self.keys = sorted(entries)
        self.entries = [entries[key] for key in self.keys]
        self._ranks = [
            _rank(entry, key) for key, entry in zip(self.keys, self.entries, strict=True)
        ]
        self._table = _sparse_table(np.asarray(self._ranks, dtype=np.int64))
        vocabulary: dict[str, int] = {}
        for key, entry in zip(self.keys, self.entries, strict=True):
            for word in key.split(" "):
                if vocabulary.get(word, -1) < entry.weight:
                    vocabulary[word] = entry.weight
        self.vocabulary = vocabulary
        self._words = sorted(vocabulary)
        self._cjk_words = [word for word in self._words if is_cjk(word)]
        self._beginnings: dict[int, tuple[list[str], list[int]]] = {}

    def __len__(self) -> int:
        return len(self.keys)

    def get(self, key: str) -> Entry | None:
        at = bisect_left(self.keys, key)
        return self.entries[at] if at < len(self.keys) and self.keys[at] == key else None

    # -- ranges ----------------------------------------------------------------------

    def _range(self, prefix: str, complete: bool) -> tuple[int, int]:
        """Candidates whose key begins with `prefix`; with `complete`, only where a
        word ends there (the key is `prefix`, or `prefix` and more words)."""
        low = bisect_left(self.keys, prefix)
        # Keys hold only word characters and single spaces, and "!" follows " ".
        high = bisect_left(self.keys, prefix + ("!" if complete else _TOP), low)
        return low, high

    def _best(self, low: int, high: int) -> int:
        level = (high - low).bit_length() - 1
        row = self._table[level]
        left, right = int(row[low]), int(row[high - (1 << level)])
        return left if self._ranks[left] >= self._ranks[right] else right

    def top(self, prefix: str, complete: bool, count: int) -> list[int]:
        """Positions of the best `count` candidates beginning with `prefix`."""
        low, high = self._range(prefix, complete)
        if low >= high or count <= 0:
            return []
        best = self._best(low, high)
        heap = [(-self._ranks[best], best, low, high)]
        found: list[int] = []
        while heap and len(found) < count:
            _, position, low, high = heapq.heappop(heap)
            found.append(position)
            for part_low, part_high in ((low, position), (position + 1, high)):
                if part_low < part_high:
                    best = self._best(part_low, part_high)
                    heapq.heappush(heap, (-self._ranks[best], best, part_low, part_high))
        return found

    # -- vocabulary ------------------------------------------------------------------

    def has_word(self, word: str) -> bool:
        return word in self.vocabulary

    def has_beginning(self, prefix: str) -> bool:
        at = bisect_left(self._words, prefix)
        return at < len(self._words) and self._words[at].startswith(prefix)

    def _by_weight(self, words: Iterable[str]) -> list[str]:
        return sorted(words, key=lambda word: (-self.vocabulary.get(word, 0), word))

    def corrections(self, word: str) -> list[str]:
        """Words of the vocabulary one edit from `word` (5+ letters), commonest first."""
        if len(word) < TYPO_MIN_LETTERS or is_cjk(word):
            return []
        found = process.extract(word, self._words, scorer=OSA.distance, score_cutoff=1, limit=None)
        return self._by_weight(choice for choice, _score, _at in found if choice != word)[
            :MAX_ALTERNATIVES
        ]

    def _beginnings_of(self, length: int) -> tuple[list[str], list[int]]:
        """Every vocabulary word cut to `length` characters, with the best weight behind
        each cut (computed once per length and index)."""
        if length not in self._beginnings:
            best: dict[str, int] = {}
            for word, weight in self.vocabulary.items():
                if len(word) >= length:
                    cut = word[:length]
                    best[cut] = max(best.get(cut, 0), weight)
            self._beginnings[length] = (list(best), list(best.values()))
        return self._beginnings[length]

    def beginning_corrections(self, prefix: str) -> list[str]:
        """Beginnings of vocabulary words one edit from `prefix` (5+ letters): the
        shopper mistyped a word they have not finished."""
        if len(prefix) < TYPO_MIN_LETTERS or is_cjk(prefix):
            return []
        weights: dict[str, int] = {}
        for length in (len(prefix) - 1, len(prefix), len(prefix) + 1):
            cuts, cut_weights = self._beginnings_of(length)
            found = process.extract(prefix, cuts, scorer=OSA.distance, score_cutoff=1, limit=None)
            for cut, _score, at in found:
                if cut != prefix:
                    weights[cut] = max(weights.get(cut, 0), cut_weights[at])
        ranked = sorted(weights, key=lambda cut: (-weights[cut], cut))
        return ranked[:MAX_ALTERNATIVES]

    def runs_containing(self, part: str) -> list[str]:
        """CJK words holding `part` (2+ characters) anywhere: "降噪" is inside
        "索尼无线降噪耳机", as the search finds it."""
        return self._by_weight(word for word in self._cjk_words if part in word)[:8]

    # -- reading a typed word ----------------------------------------------------------

    def alternatives(self, word: str, *, last: bool) -> list[Alternative]:
        """How the typed `word` may be read against this vocabulary. The last word of
        the query is a beginning (the shopper is typing it) unless `last` is False;
        earlier words are whole words."""
        if is_cjk(word):
            readings = [Alternative(word, not last, 0)]
            if len(word) >= 2:
                readings += [
                    Alternative(run, True, 0)
                    for run in self.runs_containing(word)
                    if not (last and run.startswith(word)) and run != word
                ]
            return readings
        if last:
            readings = [Alternative(word, False, 0)]
            if not self.has_beginning(word):
                readings += [Alternative(cut, False, 1) for cut in self.beginning_corrections(word)]
            return readings
        readings = [Alternative(word, True, 0)]
        if not self.has_word(word):
            readings += [Alternative(fixed, True, 1) for fixed in self.corrections(word)]
        return readings


# -- building ------------------------------------------------------------------------


def add_entry(entries: dict[str, Entry], key: str, entry: Entry) -> None:
    """Merge `entry` in: one text from two sources keeps the catalog's text, source and
    product, and the larger weight."""
    old = entries.get(key)
    if old is None:
        entries[key] = entry
        return
    keep = (
        old if SOURCE_PRIORITY.get(old.source, 9) <= SOURCE_PRIORITY.get(entry.source, 9) else entry
    )
    if keep is not old or entry.weight > old.weight:
        entries[key] = keep._replace(weight=max(old.weight, entry.weight))


def _worth_suggesting(key: str) -> bool:
    """At least two characters and a letter: "1234" or "5" alone suggest nothing."""
    return len(key) >= 2 and _LETTER.search(key) is not None


def name_phrases(name: str) -> tuple[tuple[str, str], ...]:
    """What a product name offers as suggestions, as (key, text) pairs: the whole
    name, its leading phrases ("kestrel", "kestrel audio", ...), and every run of 1-3
    words inside one part of it ("wireless headphones"); parts are split at
    punctuation, so "(32gb ram, 2tb ssd)" gives "32gb ram" but nothing spans the
    comma, and no cut phrase begins or ends with a stopword ("camera with").
    Not cached: a module-wide cache kept stale names (and hundreds of MB) across
    rebuilds; each rebuild reads the current names."""
    text = normalize_query(name)
    groups = [(match.start(), match.end()) for match in _GROUP.finditer(text)]
    if not groups:
        return ()
    words = [text[start:end] for start, end in groups]
    keys = [match_key(word) for word in words]
    lettered = [_LETTER.search(word) is not None for word in words]
    edge = [word not in STOPWORDS and bool(key) for word, key in zip(words, keys, strict=True)]
    parts: list[list[int]] = [[0]]
    for at in range(1, len(groups)):
        if text[groups[at - 1][1] : groups[at][0]].isspace():
            parts[-1].append(at)
        else:
            parts.append([at])

    phrases: dict[str, str] = {}
    whole = match_key(text)
    if _worth_suggesting(whole):
        phrases[whole] = text

    def add(first: int, last: int) -> None:
        if edge[first] and edge[last] and any(lettered[first : last + 1]):
            key = " ".join(keys[first : last + 1])
            if len(key) >= 2 and key not in phrases:
                phrases[key] = text[groups[first][0] : groups[last][1]]

    lead = parts[0]
    for last in lead[:LEADING_WORDS]:
        add(lead[0], last)
    for part in parts:
        for start in range(len(part)):
            for size in range(1, min(SHINGLE_WORDS, len(part) - start) + 1):
                add(part[start], part[start + size - 1])
    return tuple(phrases.items())


def text_entry(text: str, source: str, weight: int) -> tuple[str, Entry] | None:
    """A stored text (a category name, a model-made query) as a candidate."""
    shown = normalize_query(text)
    key = match_key(shown)
    return (key, Entry(shown, source, weight)) if _worth_suggesting(key) else None
